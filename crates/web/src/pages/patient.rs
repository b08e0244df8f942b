//! Pages every member uses: logging in and out, signing up through an invite, the list of groups,
//! a group (pinned announcements, feed, asking), a thread (replying, helpful, reporting, and for
//! doctors pinning and accepting answers), the library, joining by a group invite link, leaving.
//! Moderators also get the group's invite links (one QR code per screen) and its reports and log.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use caremesh_app::model::{FeedPosition, InviteState, Post};
use caremesh_domain::{GroupRole, MemberState, PostKind, Role};
use serde::Deserialize;

use super::{
    Form, PageError, PageResult, Viewer, esc, esc_text, field_error, pager, safe_back, see_other,
    seg, upload_error,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;
use crate::groups::GroupCtx;
use crate::page::{PageQuery, encode_cursor_parts};
use crate::state::AppState;
use caremesh_app::library::{self, ItemSource};
use caremesh_app::model::BadgeStatus;
use caremesh_app::posts::{self, FeedPage, ThreadView};
use caremesh_app::{groups, invites, moderation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/join/{token}", get(join_page).post(join))
        .route(
            "/group-invite/{token}",
            get(group_invite_page).post(group_invite_accept),
        )
        .route("/g/{gid}", get(group_page))
        .route("/g/{gid}/leave", post(leave))
        .route("/g/{gid}/me", post(set_name))
        .route("/g/{gid}/library", get(library_page))
        .route("/g/{gid}/library/folders", post(create_folder))
        .route("/g/{gid}/library/{item}/remove", post(remove_library_item))
        .route("/g/{gid}/p/{pid}", get(thread_page))
        .route("/g/{gid}/p/{pid}/helpful", post(helpful))
        .route("/g/{gid}/p/{pid}/report", post(report))
        .route("/g/{gid}/p/{pid}/accept", post(accept))
        .route("/g/{gid}/p/{pid}/pin", post(pin))
        .route("/g/{gid}/p/{pid}/save", post(save_to_library))
        .route("/g/{gid}/p/{pid}/remove", post(remove_post))
        .route("/g/{gid}/invites", get(invites_page).post(create_invite))
        .route("/g/{gid}/invites/{iid}", get(invite_page))
        .route("/g/{gid}/invites/{iid}/revoke", post(revoke_invite))
        .route("/g/{gid}/moderation", get(moderation_page))
        .route("/g/{gid}/reports/{rid}/dismiss", post(dismiss_report))
}

/// The forms that may carry a photo: their routes take bodies as large as one file and the text.
pub fn upload_router() -> Router<AppState> {
    Router::new()
        .route("/g/{gid}/ask", post(ask))
        .route("/g/{gid}/p/{pid}/reply", post(reply))
}

// ---- login, logout, sign-up ----

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

fn login_form(v: &Viewer, next: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    format!(
        r#"{err}<form method="post" action="/login" class="stack">{csrf}
<input type="hidden" name="next" value="{next}">
<label for="username">{u}</label><input id="username" name="username" autocomplete="username" required autocapitalize="none">
<label for="password">{p}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" class="primary">{b}</button></form>
<p class="hint">{hint}</p>"#,
        csrf = v.csrf_field(),
        next = esc(next),
        u = esc(v.t("username")),
        p = esc(v.t("password")),
        b = esc(v.t("login")),
        hint = esc(v.t("login-hint")),
    )
}

async fn login_page(v: Viewer, Query(q): Query<NextQuery>) -> PageResult {
    if v.auth.is_some() {
        return Ok(see_other(&safe_back(q.next.as_deref())));
    }
    let next = safe_back(q.next.as_deref());
    Ok(v.page(v.t("login"), &login_form(&v, &next, None)))
}

async fn login(
    v: Viewer,
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let next = safe_back(form.get("next"));
    let checked = caremesh_app::accounts::check_login(
        &state.app,
        ip,
        &form.text("username"),
        form.text("password"),
    )
    .await;
    match checked {
        Ok(user) => {
            let (_, cookie) = crate::auth::new_session(&state, &user).await?;
            let mut r = see_other(&next);
            r.headers_mut().append(header::SET_COOKIE, cookie);
            Ok(r)
        }
        Err(caremesh_app::AppError::InvalidCredentials) => Ok(v.page_with_status(
            StatusCode::UNAUTHORIZED,
            v.t("login"),
            &login_form(&v, &next, Some(v.t("login-failed"))),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn logout(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    if let Some(a) = &v.auth {
        caremesh_app::accounts::logout(&state.app, &a.session).await?;
    }
    let mut r = see_other("/login");
    r.headers_mut().append(
        header::SET_COOKIE,
        crate::auth::cleared_session_cookie(&state),
    );
    Ok(r)
}

fn join_form(v: &Viewer, token: &str, hospital: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    format!(
        r#"<p>{welcome}</p>{err}<form method="post" action="/join/{tok}" class="stack">{csrf}
<label for="display_name">{dn}</label><input id="display_name" name="display_name" required maxlength="64" aria-describedby="dn-hint"><p id="dn-hint" class="hint">{dnh}</p>
<label for="username">{u}</label><input id="username" name="username" required autocapitalize="none" autocomplete="username" aria-describedby="u-hint"><p id="u-hint" class="hint">{uh}</p>
<label for="password">{p}</label><input id="password" name="password" type="password" required minlength="10" autocomplete="new-password" aria-describedby="p-hint"><p id="p-hint" class="hint">{ph}</p>
<button type="submit" class="primary">{b}</button></form>"#,
        welcome = esc(&v.tf("join-welcome", &[("hospital", hospital)])),
        tok = seg(token),
        csrf = v.csrf_field(),
        dn = esc(v.t("display-name")),
        dnh = esc(v.t("display-name-hint")),
        u = esc(v.t("username")),
        uh = esc(v.t("username-hint")),
        p = esc(v.t("password")),
        ph = esc(v.t("password-hint")),
        b = esc(v.t("join-submit")),
    )
}

async fn check_signup_invite(state: &AppState, token: &str) -> Result<(), PageError> {
    caremesh_app::accounts::signup_invite(&state.app, token).await?;
    Ok(())
}

async fn join_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> PageResult {
    check_signup_invite(&state, &token).await?;
    Ok(v.page(
        v.t("join-title"),
        &join_form(&v, &token, &state.app.settings.hospital_name, None),
    ))
}

async fn join(
    v: Viewer,
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let result = caremesh_app::accounts::sign_up(
        &state.app,
        &token,
        &form.text("username"),
        &form.text("display_name"),
        form.text("password"),
    )
    .await;
    let (status, msg) = match result {
        Ok(user) => {
            let (_, cookie) = crate::auth::new_session(&state, &user).await?;
            let mut r = see_other("/");
            r.headers_mut().append(header::SET_COOKIE, cookie);
            return Ok(r);
        }
        Err(caremesh_app::AppError::Conflict { .. }) => {
            (StatusCode::CONFLICT, v.t("username-taken").to_owned())
        }
        Err(caremesh_app::AppError::Invalid { message, .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, message)
        }
        Err(e) => return Err(e.into()),
    };
    Ok(v.page_with_status(
        status,
        v.t("join-title"),
        &join_form(&v, &token, &state.app.settings.hospital_name, Some(&msg)),
    ))
}

// ---- groups ----

pub(super) fn role_name(v: &Viewer, r: GroupRole) -> &'static str {
    match r {
        GroupRole::Owner => v.t("role-owner"),
        GroupRole::Doctor => v.t("role-doctor"),
        GroupRole::Moderator => v.t("role-moderator"),
        GroupRole::Member => v.t("role-member"),
    }
}

async fn home(v: Viewer, State(state): State<AppState>) -> PageResult {
    let auth = v.require()?;
    let groups = groups::my_groups(&state.app, &auth.user, None, groups::SHORT_LIST).await?;
    let mut h = String::new();
    if groups.is_empty() {
        h.push_str(&format!(r#"<p>{}</p>"#, esc(v.t("no-groups"))));
    } else {
        h.push_str(r#"<ul class="cards">"#);
        for (g, m) in groups {
            h.push_str(&format!(
                r#"<li><a class="card" href="/g/{id}"><strong>{name}</strong><span>{cond} · {city}</span><span class="meta">{members} · {role}</span></a></li>"#,
                id = seg(&g.public_id),
                name = esc(&g.settings.name),
                cond = esc(&g.settings.condition),
                city = esc(&g.settings.city),
                members = esc(&v.tf("member-count", &[("n", &v.num(u64::from(g.member_count)))])),
                role = esc(role_name(&v, m.role)),
            ));
        }
        h.push_str("</ul>");
    }
    if groups::may_create_groups(&auth.user).is_ok() {
        h.push_str(&format!(
            r#"<p><a class="button" href="/groups/new">{}</a></p>"#,
            esc(v.t("new-group"))
        ));
    }
    Ok(v.page(v.t("my-groups"), &h))
}

pub(super) async fn load(state: &AppState, v: &Viewer, gid: &str) -> Result<GroupCtx, PageError> {
    let auth = v.require()?;
    Ok(crate::groups::load_ctx(state, auth, gid).await?)
}

use caremesh_app::posts::Badges;

fn post_author(v: &Viewer, p: &Post, badges: &Badges) -> String {
    let mut badge = match p.author.role {
        Some(GroupRole::Doctor) | Some(GroupRole::Owner) => {
            format!(r#" <span class="badge">{}</span>"#, esc(v.t("role-doctor")))
        }
        _ => String::new(),
    };
    if let Some(b) = posts::badge_of(badges, p) {
        let (cls, text) = match b.status {
            BadgeStatus::Verified => (
                "ok",
                v.tf(
                    "badge-verified-by",
                    &[("hospital", b.issuer_name.as_deref().unwrap_or("?"))],
                ),
            ),
            BadgeStatus::Expired => ("warn", v.t("badge-expired").to_owned()),
            BadgeStatus::Revoked => ("warn", v.t("badge-revoked").to_owned()),
            BadgeStatus::Unverified => ("warn", v.t("badge-unverified").to_owned()),
        };
        badge.push_str(&format!(
            r#" <span class="badge {cls} credential">{}</span>"#,
            esc(&text)
        ));
    }
    format!(
        r#"<span class="author">{}</span>{badge} · <time>{}</time>"#,
        esc(&p.author.name),
        esc(&v.time(p.publish_at))
    )
}

fn post_summary(v: &Viewer, gid: &str, p: &Post, seen: Option<u64>, badges: &Badges) -> String {
    let title = p.title.clone().unwrap_or_else(|| {
        let s: String = p.body.chars().take(60).collect();
        s
    });
    let kind = match p.kind {
        PostKind::Announcement => v.t("kind-announcement"),
        PostKind::Question => v.t("kind-question"),
        PostKind::Reply => v.t("kind-reply"),
    };
    let mut meta = vec![esc(
        &v.tf("reply-count", &[("n", &v.num(u64::from(p.reply_count)))])
    )];
    if p.answered_by_doctor {
        meta.push(esc(v.t("answered-by-doctor")));
    }
    if let Some(n) = seen {
        meta.push(format!(
            r#"<span class="seen">{}</span>"#,
            esc(&v.tf("seen-by", &[("n", &v.num(n))]))
        ));
    }
    format!(
        r#"<article class="post {cls}"><p class="kind">{kind}</p><h3><a href="/g/{gid}/p/{pid}">{title}</a></h3><p class="byline">{by}</p><p class="excerpt">{body}</p><p class="meta">{meta}</p></article>"#,
        cls = if p.pinned { "pinned" } else { "" },
        gid = seg(gid),
        pid = seg(&p.public_id),
        title = esc(&title),
        by = post_author(v, p, badges),
        body = esc(&p.body.chars().take(200).collect::<String>()),
        meta = meta.join(" · "),
    )
}

/// How many posts one feed page shows; older ones are a link away.
const FEED_PAGE: u32 = 20;

#[derive(Deserialize, Default)]
struct GroupQuery {
    /// Where the feed continues (the JSON API's feed cursor).
    cursor: Option<String>,
    /// What was just done, for a confirmation (`name`).
    done: Option<String>,
}

/// What a visitor typed into the group page's forms, shown again with the problem when it could
/// not be stored.
#[derive(Default)]
struct GroupDraft {
    ask_error: Option<String>,
    title: String,
    body: String,
    name_error: Option<String>,
    name: Option<String>,
}

async fn group_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    Query(q): Query<GroupQuery>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    if ctx.read().is_err() {
        // Administrators who are not members see the group's moderation page instead.
        return Ok(see_other(&format!("/g/{}/moderation", seg(&gid))));
    }
    render_group(&v, &state, &ctx, &q, GroupDraft::default(), StatusCode::OK).await
}

/// Whether the asker may see the group's member list: moderators always, members when the owner
/// opened the list to them (the JSON API's rule).
fn sees_members(ctx: &GroupCtx) -> bool {
    ctx.may_list_members(MemberState::Active).is_ok()
}

/// For the staff of a group hosted by another hospital: what they asked its host to do lately
/// (a pin, a removal, …) and what the host answered, with its reason when it refused.
async fn requests_to_host(
    v: &Viewer,
    state: &AppState,
    ctx: &GroupCtx,
) -> Result<String, PageError> {
    let requests = caremesh_app::actions::requests(&state.app, ctx, 5).await?;
    if requests.is_empty() {
        return Ok(String::new());
    }
    let mut h = format!(
        r#"<section aria-labelledby="requests-h"><h2 id="requests-h">{}</h2><ul class="requests">"#,
        esc(v.t("requests-title"))
    );
    for r in requests {
        let action =
            super::i18n::lookup(v.lang, &format!("action-{}", r.action)).unwrap_or(&r.action);
        let state_key = match r.state.as_str() {
            "accepted" => "request-accepted",
            "refused" => "request-refused",
            _ => "request-pending",
        };
        h.push_str(&format!(
            r#"<li>{} · {} · <span class="{}">{}</span>"#,
            esc(&v.time(r.created_at)),
            esc(action),
            esc(&r.state),
            esc(v.t(state_key))
        ));
        if r.state == "refused" {
            let why = r
                .code
                .as_deref()
                .and_then(|c| super::i18n::lookup(v.lang, &format!("code-{c}")))
                .map(str::to_owned)
                .or(r.reason)
                .unwrap_or_default();
            h.push_str(&format!(r#" <span class="detail">{}</span>"#, esc(&why)));
        }
        h.push_str("</li>");
    }
    h.push_str("</ul></section>");
    Ok(h)
}

async fn render_group(
    v: &Viewer,
    state: &AppState,
    ctx: &GroupCtx,
    q: &GroupQuery,
    draft: GroupDraft,
    status: StatusCode,
) -> PageResult {
    let gid = ctx.group.public_id.as_str();
    let (position, _) = PageQuery {
        cursor: q.cursor.clone(),
        limit: None,
    }
    .decode_parts(3)?;
    let first_page = position.is_none();
    let after = position.map(|p| FeedPosition {
        pinned: p[0] != 0,
        key: p[1],
        id: p[2],
    });
    let FeedPage {
        posts,
        more,
        badges,
        seen,
    } = posts::feed_page(&state.app, ctx, after, FEED_PAGE).await?;
    let next_cursor = if more {
        posts
            .last()
            .map(|p| encode_cursor_parts(&[i64::from(p.pinned), p.publish_at.as_millis(), p.id]))
    } else {
        None
    };
    let seen = |p: &Post| seen.get(&p.id).copied();
    let g = &ctx.group;
    let mut h = String::new();
    for e in [&draft.ask_error, &draft.name_error].into_iter().flatten() {
        h.push_str(&format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)));
    }
    if q.done.as_deref() == Some("name")
        && let Some(m) = &ctx.member
    {
        h.push_str(&format!(
            r#"<p class="ok" role="status">{}</p>"#,
            esc(&v.tf("my-name-saved", &[("name", &m.display_name)]))
        ));
    }
    h.push_str(&format!(
        r#"<p class="lead">{cond} · {city} · {members}</p>"#,
        cond = esc(&g.settings.condition),
        city = esc(&g.settings.city),
        members = esc(&v.tf("member-count", &[("n", &v.num(u64::from(g.member_count)))])),
    ));
    if first_page && !g.settings.description.is_empty() {
        h.push_str(&format!(r#"<p>{}</p>"#, esc_text(&g.settings.description)));
    }
    h.push_str(&format!(
        r#"<nav class="subnav" aria-label="{}"><a href="/g/{gid}/library">{}</a>"#,
        esc(v.t("group-menu")),
        esc(v.t("library")),
        gid = seg(gid)
    ));
    if sees_members(ctx) {
        h.push_str(&format!(
            r#"<a href="/g/{}/members">{}</a>"#,
            seg(gid),
            esc(v.t("members"))
        ));
    }
    if ctx.moderate().is_ok() {
        h.push_str(&format!(
            r#"<a href="/g/{gid}/invites">{}</a><a href="/g/{gid}/moderation">{}</a>"#,
            esc(v.t("invites")),
            esc(v.t("moderation")),
            gid = seg(gid)
        ));
    }
    h.push_str("</nav>");
    if first_page && ctx.hosted_elsewhere() && ctx.moderate().is_ok() {
        h.push_str(&requests_to_host(v, state, ctx).await?);
    }
    if first_page {
        let pinned: Vec<&Post> = posts.iter().filter(|p| p.pinned).collect();
        if !pinned.is_empty() {
            h.push_str(&format!(
                r#"<section aria-labelledby="pinned-h"><h2 id="pinned-h">{}</h2>"#,
                esc(v.t("pinned"))
            ));
            for p in pinned {
                h.push_str(&post_summary(v, gid, p, seen(p), &badges));
            }
            h.push_str("</section>");
        }
        // The one main action: ask a question.
        h.push_str(&format!(
            r#"<section aria-labelledby="ask-h" class="box"><h2 id="ask-h">{ask}</h2>
<p class="notice">{notice}</p>
<form method="post" action="/g/{gid}/ask" class="stack" enctype="multipart/form-data">{csrf}
<label for="title">{tl}</label><input id="title" name="title" maxlength="200" value="{title}">
<label for="body">{bl}</label><textarea id="body" name="body" rows="4" required>{body}</textarea>
{photo}<button type="submit" class="primary">{b}</button></form></section>"#,
            ask = esc(v.t("ask-title")),
            notice = esc(v.t("disclaimer")),
            gid = seg(gid),
            csrf = v.csrf_field(),
            tl = esc(v.t("question-title")),
            title = esc(&draft.title),
            bl = esc(v.t("question-body")),
            body = esc(&draft.body),
            photo = photo_field(v, state, "photo"),
            b = esc(v.t("ask-submit")),
        ));
    }
    h.push_str(&format!(
        r#"<section aria-labelledby="feed-h"><h2 id="feed-h">{}</h2>"#,
        esc(v.t(if first_page { "feed" } else { "older-posts" }))
    ));
    let rest: Vec<&Post> = posts.iter().filter(|p| !first_page || !p.pinned).collect();
    if rest.is_empty() {
        h.push_str(&format!("<p>{}</p>", esc(v.t("feed-empty"))));
    }
    for p in rest {
        h.push_str(&post_summary(v, gid, p, seen(p), &badges));
    }
    h.push_str(&pager(
        v,
        &format!("/g/{}", seg(gid)),
        next_cursor.as_deref(),
        !first_page,
        "older-posts",
        "newest-posts",
        "#feed-h",
    ));
    h.push_str("</section>");
    if first_page && ctx.user.role == Role::Patient {
        let current = ctx
            .member
            .as_ref()
            .map_or(ctx.user.display_name.as_str(), |m| m.display_name.as_str());
        let hint = if g.remote_actor_id.is_some() {
            v.t("my-name-hint-remote")
        } else {
            v.t("my-name-hint")
        };
        h.push_str(&format!(
            r#"<section aria-labelledby="name-h" class="box" id="my-name"><h2 id="name-h">{t}</h2>
<form method="post" action="/g/{gid}/me" class="stack">{csrf}
<label for="display_name">{l}</label><input id="display_name" name="display_name" required maxlength="64" value="{value}" aria-describedby="name-hint"{invalid}>
<p id="name-hint" class="hint">{hint}</p><button type="submit">{b}</button></form></section>"#,
            t = esc(v.t("my-name-title")),
            gid = seg(gid),
            csrf = v.csrf_field(),
            l = esc(v.t("my-name-label")),
            value = esc(draft.name.as_deref().unwrap_or(current)),
            invalid = if draft.name_error.is_some() {
                r#" aria-invalid="true""#
            } else {
                ""
            },
            hint = esc(hint),
            b = esc(v.t("save")),
        ));
    }
    if first_page && ctx.role() != Some(GroupRole::Owner) {
        h.push_str(&format!(
            r#"<section aria-labelledby="leave-h" class="quiet"><h2 id="leave-h">{}</h2><p>{}</p>{}</section>"#,
            esc(v.t("leave-title")),
            esc(v.t("leave-hint")),
            v.button_form(&format!("/g/{}/leave", seg(gid)), &[], v.t("leave"), "danger")
        ));
    }
    Ok(v.page_with_status(status, &g.settings.name, &h))
}

/// The photo field of the forms that take one, with what happens to photos and the limits.
fn photo_field(v: &Viewer, state: &AppState, id: &str) -> String {
    format!(
        r#"<label for="{id}">{l}</label><input id="{id}" name="photo" type="file" accept="image/jpeg,image/png,image/webp,application/pdf" aria-describedby="{id}-hint">
<p id="{id}-hint" class="hint">{hint}</p>"#,
        l = esc(v.t("photo-label")),
        hint = esc(&v.tf(
            "photo-hint",
            &[("mb", &super::mb(state.settings.max_file_bytes))]
        )),
    )
}

/// The photo chosen in a form, cleaned of its metadata and stored for the group: the attachment
/// ids for the post (none when no photo was chosen).
async fn form_photo(state: &AppState, ctx: &GroupCtx, form: &Form) -> ApiResult<Vec<String>> {
    let Some(f) = form.file("photo") else {
        return Ok(Vec::new());
    };
    if f.too_large {
        return Err(crate::media::file_too_large(state.settings.max_file_bytes));
    }
    let a = caremesh_app::media::save_upload(
        &state.app,
        ctx,
        f.bytes.to_vec(),
        Some(f.file_name.clone()),
    )
    .await?;
    Ok(vec![a.public_id])
}

async fn ask(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    ctx.read()?;
    let mut draft = GroupDraft {
        title: form.text("title"),
        body: form.text("body"),
        ..GroupDraft::default()
    };
    let checked = (|| {
        let title = posts::clean_title(Some(draft.title.clone()))
            .map_err(|e| field_error(&v, v.t("question-title"), &e))?;
        let body = posts::clean_body(&draft.body)
            .map_err(|e| field_error(&v, v.t("question-body"), &e))?;
        Ok::<_, String>((title, body))
    })();
    let (title, body) = match checked {
        Ok(ok) => ok,
        Err(message) => {
            draft.ask_error = Some(message);
            let q = GroupQuery::default();
            return render_group(
                &v,
                &state,
                &ctx,
                &q,
                draft,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let attachments = match form_photo(&state, &ctx, &form).await {
        Ok(a) => a,
        Err(e) => {
            let Some(message) = upload_error(&v, &state, &e) else {
                return Err(e.into());
            };
            draft.ask_error = Some(message);
            let q = GroupQuery::default();
            return render_group(&v, &state, &ctx, &q, draft, e.status).await;
        }
    };
    let new = posts::NewThread {
        kind: PostKind::Question,
        title,
        body,
        pinned: false,
        publish_at: None,
        attachments,
    };
    let post = posts::ask(&state.app, &ctx, new).await?;
    Ok(see_other(&format!(
        "/g/{}/p/{}",
        seg(&gid),
        seg(&post.public_id)
    )))
}

/// Chooses the name the patient shows in this group.
async fn set_name(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::may_choose_name(&ctx)?;
    let name = form.text("display_name");
    if let Err(e) = groups::clean_member_name(&name) {
        let draft = GroupDraft {
            name_error: Some(field_error(&v, v.t("my-name-label"), &e)),
            name: Some(name),
            ..GroupDraft::default()
        };
        let q = GroupQuery::default();
        return render_group(
            &v,
            &state,
            &ctx,
            &q,
            draft,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    groups::set_member_name(&state.app, &ctx, &name).await?;
    Ok(see_other(&format!("/g/{}?done=name#my-name", seg(&gid))))
}

async fn leave(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::leave_as(&state.app, &ctx).await?;
    Ok(see_other("/"))
}

fn helpful_form(v: &Viewer, gid: &str, p: &Post) -> String {
    let label = if p.marked_helpful {
        v.tf(
            "unmark-helpful",
            &[("n", &v.num(u64::from(p.helpful_count)))],
        )
    } else {
        v.tf("mark-helpful", &[("n", &v.num(u64::from(p.helpful_count)))])
    };
    let thread = p.thread_public_id.as_deref().unwrap_or(&p.public_id);
    v.button_form(
        &format!("/g/{}/p/{}/helpful", seg(gid), seg(&p.public_id)),
        &[
            ("on", if p.marked_helpful { "0" } else { "1" }),
            ("back", &format!("/g/{}/p/{}", seg(gid), seg(thread))),
        ],
        &label,
        "secondary",
    )
}

fn report_form(v: &Viewer, gid: &str, p: &Post) -> String {
    format!(
        r#"<details class="report"><summary>{s}</summary><form method="post" action="/g/{gid}/p/{pid}/report" class="stack">{csrf}
<label for="reason-{pid}">{l}</label><input id="reason-{pid}" name="reason" required maxlength="500">
<button type="submit" class="secondary">{b}</button></form></details>"#,
        s = esc(v.t("report")),
        gid = seg(gid),
        pid = seg(&p.public_id),
        csrf = v.csrf_field(),
        l = esc(v.t("report-reason")),
        b = esc(v.t("report-submit")),
    )
}

fn attachments_html(v: &Viewer, gid: &str, p: &Post) -> String {
    let mut h = String::new();
    for a in &p.attachments {
        let url = format!(
            "/api/v1/groups/{}/attachments/{}",
            seg(gid),
            seg(&a.public_id)
        );
        if a.content_type.starts_with("image/") {
            h.push_str(&format!(
                r#"<p><img src="{url}" alt="{}" loading="lazy" class="photo"></p>"#,
                esc(&a.file_name)
            ));
        } else {
            h.push_str(&format!(
                r#"<p><a href="{url}">{} ({})</a></p>"#,
                esc(&a.file_name),
                esc(v.t("download"))
            ));
        }
    }
    h
}

/// A reply that could not be posted, shown again with the problem.
#[derive(Default)]
struct ReplyDraft {
    error: Option<String>,
    body: String,
}

async fn thread_page(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    let post = posts::post(&state.app, &ctx, &pid).await?;
    if let Some(t) = &post.thread_public_id {
        return Ok(see_other(&format!("/g/{}/p/{}", seg(&gid), seg(t))));
    }
    render_thread(
        &v,
        &state,
        &ctx,
        post,
        ReplyDraft::default(),
        StatusCode::OK,
    )
    .await
}

async fn render_thread(
    v: &Viewer,
    state: &AppState,
    ctx: &GroupCtx,
    post: Post,
    draft: ReplyDraft,
    status: StatusCode,
) -> PageResult {
    let gid = ctx.group.public_id.clone();
    let now = state.app.now();
    let ThreadView {
        post,
        replies,
        badges,
        seen_by,
        folders,
    } = posts::open_thread(&state.app, ctx, post).await?;
    let teach = ctx.teach().is_ok();
    let g = &ctx.group;
    let mut h = String::new();
    if let Some(e) = &draft.error {
        h.push_str(&format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)));
    }
    h.push_str(&format!(
        r#"<p class="crumbs"><a href="/g/{gid}">{name}</a></p><article class="post main-post"><p class="byline">{by}</p><div class="body">{body}</div>{att}"#,
        gid = seg(&gid),
        name = esc(&g.settings.name),
        by = post_author(v, &post, &badges),
        body = esc_text(&post.body),
        att = attachments_html(v, &gid, &post),
    ));
    if post.deleted_at.is_some() {
        h.push_str(&format!(r#"<p class="meta">{}</p>"#, esc(v.t("deleted"))));
    }
    if let Some(n) = seen_by {
        h.push_str(&format!(
            r#"<p class="seen">{}</p>"#,
            esc(&v.tf("seen-by", &[("n", &v.num(n))]))
        ));
        if post.publish_at > now {
            h.push_str(&format!(
                r#"<p class="meta">{}</p>"#,
                esc(&v.tf("scheduled-for", &[("time", &v.time(post.publish_at))]))
            ));
        }
    }
    h.push_str(r#"<div class="actions">"#);
    h.push_str(&helpful_form(v, &gid, &post));
    if teach && post.kind == PostKind::Announcement {
        h.push_str(&v.button_form(
            &format!("/g/{}/p/{}/pin", seg(&gid), seg(&post.public_id)),
            &[("on", if post.pinned { "0" } else { "1" })],
            if post.pinned {
                v.t("unpin")
            } else {
                v.t("pin")
            },
            "secondary",
        ));
    }
    if !folders.is_empty() {
        let mut opts = String::new();
        for f in folders {
            opts.push_str(&format!(
                r#"<option value="{}">{}</option>"#,
                f.id,
                esc(&f.name)
            ));
        }
        h.push_str(&format!(
            r#"<form method="post" action="/g/{gid}/p/{pid}/save" class="inline">{csrf}<label for="folder">{l}</label> <select id="folder" name="folder">{opts}</select> <button type="submit" class="secondary">{b}</button></form>"#,
            gid = seg(&gid),
            pid = seg(&post.public_id),
            csrf = v.csrf_field(),
            l = esc(v.t("save-to-folder")),
            b = esc(v.t("save")),
        ));
    }
    h.push_str("</div>");
    h.push_str(&report_form(v, &gid, &post));
    h.push_str("</article>");
    h.push_str(&format!(
        r#"<section aria-labelledby="replies-h"><h2 id="replies-h">{}</h2>"#,
        esc(&v.tf("reply-count", &[("n", &v.num(replies.len() as u64))]))
    ));
    for r in &replies {
        let accepted = post.accepted_reply_public_id.as_deref() == Some(r.public_id.as_str());
        h.push_str(&format!(
            r#"<article class="post reply{cls}" id="r-{rid}">{acc}<p class="byline">{by}</p><div class="body">{body}</div>{att}<div class="actions">{help}"#,
            cls = if accepted { " accepted" } else { "" },
            rid = esc(&r.public_id),
            acc = if accepted {
                format!(r#"<p class="badge ok">{}</p>"#, esc(v.t("accepted-answer")))
            } else {
                String::new()
            },
            by = post_author(v, r, &badges),
            body = if r.deleted_at.is_some() {
                esc(v.t("deleted"))
            } else {
                esc_text(&r.body)
            },
            att = attachments_html(v, &gid, r),
            help = helpful_form(v, &gid, r),
        ));
        if teach && post.kind == PostKind::Question && !accepted && r.deleted_at.is_none() {
            h.push_str(&v.button_form(
                &format!("/g/{}/p/{}/accept", seg(&gid), seg(&post.public_id)),
                &[("reply", &r.public_id)],
                v.t("accept"),
                "secondary",
            ));
        }
        h.push_str("</div>");
        h.push_str(&report_form(v, &gid, r));
        h.push_str("</article>");
    }
    h.push_str("</section>");
    h.push_str(&format!(
        r#"<section aria-labelledby="reply-h" class="box"><h2 id="reply-h">{t}</h2><p class="notice">{notice}</p>
<form method="post" action="/g/{gid}/p/{pid}/reply" class="stack" enctype="multipart/form-data">{csrf}
<label for="reply-body">{l}</label><textarea id="reply-body" name="body" rows="4" required>{body}</textarea>
{photo}<button type="submit" class="primary">{b}</button></form></section>"#,
        t = esc(v.t("reply-title")),
        notice = esc(v.t("disclaimer")),
        gid = seg(&gid),
        pid = seg(&post.public_id),
        csrf = v.csrf_field(),
        l = esc(v.t("reply-body")),
        body = esc(&draft.body),
        b = esc(v.t("reply-submit")),
        photo = photo_field(v, state, "reply-photo"),
    ));
    let title = post.title.clone().unwrap_or_else(|| match post.kind {
        PostKind::Announcement => v.t("kind-announcement").to_owned(),
        _ => v.t("kind-question").to_owned(),
    });
    Ok(v.page_with_status(status, &title, &h))
}

async fn reply(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    let thread = posts::reply_target(&state.app, &ctx, &pid).await?;
    let mut draft = ReplyDraft {
        error: None,
        body: form.text("body"),
    };
    let body = match posts::clean_body(&draft.body) {
        Ok(b) => b,
        Err(e) => {
            draft.error = Some(field_error(&v, v.t("reply-body"), &e));
            return render_thread(
                &v,
                &state,
                &ctx,
                thread,
                draft,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let attachments = match form_photo(&state, &ctx, &form).await {
        Ok(a) => a,
        Err(e) => {
            let Some(message) = upload_error(&v, &state, &e) else {
                return Err(e.into());
            };
            draft.error = Some(message);
            return render_thread(&v, &state, &ctx, thread, draft, e.status).await;
        }
    };
    posts::reply(&state.app, &ctx, &pid, &body, attachments).await?;
    let back = match form.get("back") {
        Some(b) => safe_back(Some(b)),
        None => format!("/g/{}/p/{}", seg(&gid), seg(&pid)),
    };
    Ok(see_other(&back))
}

async fn helpful(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    posts::mark_helpful_as(&state.app, &ctx, &pid, form.get("on") != Some("0")).await?;
    Ok(see_other(&safe_back(form.get("back"))))
}

async fn report(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    let post = posts::post(&state.app, &ctx, &pid).await?;
    posts::report(&state.app, &ctx, &pid, &form.text("reason")).await?;
    let thread = post.thread_public_id.as_deref().unwrap_or(&post.public_id);
    Ok(v.page(
        v.t("report"),
        &format!(
            r#"<p role="status">{}</p><p><a href="/g/{}/p/{}">{}</a></p>"#,
            esc(v.t("report-thanks")),
            seg(&gid),
            seg(thread),
            esc(v.t("back"))
        ),
    ))
}

async fn accept(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    posts::accept_as(&state.app, &ctx, &pid, Some(&form.text("reply"))).await?;
    Ok(see_other(&format!("/g/{}/p/{}", seg(&gid), seg(&pid))))
}

async fn pin(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    posts::pin_as(&state.app, &ctx, &pid, form.get("on") != Some("0")).await?;
    Ok(see_other(&format!("/g/{}/p/{}", seg(&gid), seg(&pid))))
}

// ---- library ----

async fn library_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    let (folders, items) = library::library(&state.app, &ctx).await?;
    let curate = ctx.keep_library().is_ok();
    let mut h = format!(
        r#"<p class="crumbs"><a href="/g/{}">{}</a></p>"#,
        seg(&gid),
        esc(&ctx.group.settings.name)
    );
    if folders.is_empty() {
        h.push_str(&format!("<p>{}</p>", esc(v.t("library-empty"))));
    }
    for f in &folders {
        h.push_str(&format!(
            r#"<section><h2>{}</h2><ul class="list">"#,
            esc(&f.name)
        ));
        for i in items.iter().filter(|i| i.folder_id == f.id) {
            let link = match (&i.post_public_id, &i.attachment) {
                (Some(p), _) => format!("/g/{}/p/{}", seg(&gid), seg(p)),
                (None, Some(a)) => format!(
                    "/api/v1/groups/{}/attachments/{}",
                    seg(&gid),
                    seg(&a.public_id)
                ),
                _ => "#".to_owned(),
            };
            h.push_str(&format!(
                r#"<li><a href="{}">{}</a>"#,
                esc(&link),
                esc(&i.title)
            ));
            if curate {
                h.push(' ');
                h.push_str(&v.button_form(
                    &format!("/g/{}/library/{}/remove", seg(&gid), i.id),
                    &[],
                    v.t("remove"),
                    "link",
                ));
            }
            h.push_str("</li>");
        }
        h.push_str("</ul></section>");
    }
    if curate {
        h.push_str(&format!(
            r#"<section class="box"><h2>{t}</h2><form method="post" action="/g/{gid}/library/folders" class="stack">{csrf}<label for="folder-name">{l}</label><input id="folder-name" name="name" required maxlength="100"><button type="submit" class="primary">{b}</button></form><p class="hint">{hint}</p></section>"#,
            t = esc(v.t("new-folder")),
            gid = seg(&gid),
            csrf = v.csrf_field(),
            l = esc(v.t("folder-name")),
            b = esc(v.t("create")),
            hint = esc(v.t("library-hint")),
        ));
    }
    Ok(v.page(v.t("library"), &h))
}

async fn create_folder(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    library::create_folder(&state.app, &ctx, &form.text("name")).await?;
    Ok(see_other(&format!("/g/{}/library", seg(&gid))))
}

async fn save_to_library(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    ctx.keep_library()?;
    let folder: i64 = form
        .text("folder")
        .parse()
        .map_err(|_| ApiError::unprocessable("invalid_field", "folder: choose a folder"))?;
    library::add_item(&state.app, &ctx, folder, ItemSource::Post(pid), None).await?;
    Ok(see_other(&format!("/g/{}/library", seg(&gid))))
}

async fn remove_library_item(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, item)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    library::remove_item(&state.app, &ctx, item).await?;
    Ok(see_other(&format!("/g/{}/library", seg(&gid))))
}

// ---- group invites ----

async fn group_invite_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> PageResult {
    let Some(auth) = v.auth.as_ref() else {
        // Not logged in here: log in, or take the invitation to one's own hospital.
        let invite = invites::by_token(&state.app, &token).await?;
        return super::remote::invite_for_visitors(&v, &state, &token, &invite).await;
    };
    let invites::Preview {
        group,
        role,
        state: st,
        ..
    } = invites::preview(&state.app, &auth.user, &token).await?;
    if role.is_some() {
        return Ok(see_other(&format!("/g/{}", seg(&group.public_id))));
    }
    let mut h = format!(
        r#"<p class="lead">{cond} · {city}</p><p>{desc}</p>"#,
        cond = esc(&group.settings.condition),
        city = esc(&group.settings.city),
        desc = esc_text(&group.settings.description)
    );
    if st == InviteState::Usable {
        h.push_str(&format!(
            r#"<p class="notice">{}</p><form method="post" action="/group-invite/{}" class="stack">{}<p class="hint">{}</p><button type="submit" class="primary">{}</button></form>"#,
            esc(v.t("disclaimer")),
            seg(&token),
            v.csrf_field(),
            esc(&v.tf("joining-as", &[("name", &auth.user.display_name)])),
            esc(v.t("join-group"))
        ));
    } else {
        h.push_str(&format!(
            r#"<p class="error" role="alert">{}</p>"#,
            esc(v.t("invite-unusable"))
        ));
    }
    Ok(v.page(&group.settings.name, &h))
}

async fn group_invite_accept(
    v: Viewer,
    State(state): State<AppState>,
    Path(token): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let auth = v.require()?;
    let (group, _member) = invites::accept(&state.app, &auth.user, &token).await?;
    Ok(see_other(&format!("/g/{}", seg(&group.public_id))))
}

/// Invite links listed on the invites page.
const INVITES_PAGE: u32 = 50;

fn invite_state_text(v: &Viewer, s: InviteState) -> &'static str {
    match s {
        InviteState::Usable => v.t("invite-usable"),
        InviteState::Expired => v.t("invite-expired"),
        InviteState::UsedUp => v.t("invite-used-up"),
        InviteState::Revoked => v.t("invite-revoked"),
    }
}

async fn invites_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    let found = invites::list(&state.app, &ctx, None, INVITES_PAGE).await?;
    let now = state.app.now();
    let mut h = format!(
        r#"<p class="crumbs"><a href="/g/{gid}">{name}</a></p><section class="box"><h2>{t}</h2><form method="post" action="/g/{gid}/invites" class="stack">{csrf}
<label for="label">{ll}</label><input id="label" name="label" maxlength="100">
<label for="valid_days">{dl}</label><input id="valid_days" name="valid_days" type="number" min="1" max="{max_days}" value="14">
<label for="max_uses">{ml}</label><input id="max_uses" name="max_uses" type="number" min="1" max="{max_uses}" value="50">
<button type="submit" class="primary">{b}</button></form></section><h2>{lt}</h2><ul class="list">"#,
        gid = seg(&gid),
        name = esc(&ctx.group.settings.name),
        t = esc(v.t("new-invite")),
        csrf = v.csrf_field(),
        ll = esc(v.t("invite-label")),
        dl = esc(v.t("valid-days")),
        ml = esc(v.t("max-uses")),
        max_days = invites::MAX_VALID_HOURS / 24,
        max_uses = invites::MAX_USES,
        b = esc(v.t("create")),
        lt = esc(v.t("invites")),
    );
    for i in found {
        h.push_str(&format!(
            r#"<li><a href="/g/{}/invites/{}">{}</a> · {}</li>"#,
            seg(&gid),
            i.id,
            esc(i.label.as_deref().unwrap_or(v.t("invite-no-label"))),
            esc(invite_state_text(&v, i.state(now)))
        ));
    }
    h.push_str("</ul>");
    Ok(v.page(v.t("invites"), &h))
}

async fn create_invite(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    let label = form.text("label");
    let new = invites::NewInvite {
        label: (!label.trim().is_empty()).then_some(label),
        valid_hours: form
            .get("valid_days")
            .and_then(|d| d.trim().parse().ok())
            .map(invites::NewInvite::days_to_hours),
        max_uses: form.get("max_uses").and_then(|n| n.trim().parse().ok()),
    };
    let invite = invites::create(&state.app, &ctx, new).await?;
    Ok(see_other(&format!(
        "/g/{}/invites/{}",
        seg(&gid),
        invite.id
    )))
}

/// One invite per screen: its QR code as a real image (WeChat opens a long-pressed code only from
/// an `<img>`), the link, expiry and use limit, and the button to withdraw it.
async fn invite_page(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, iid)): Path<(String, i64)>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    let invite = invites::get(&state.app, &ctx, iid).await?;
    let url = invites::url(&state.app, &invite.token);
    let st = invite.state(state.app.now());
    let expiry = match invite.expires_at {
        Some(t) => v.tf("valid-until", &[("time", &v.time(t))]),
        None => v.t("no-expiry").to_owned(),
    };
    let uses = match invite.max_uses {
        Some(m) => v.tf(
            "uses-of",
            &[
                ("n", &v.num(u64::from(invite.uses))),
                ("max", &v.num(u64::from(m))),
            ],
        ),
        None => v.tf("uses", &[("n", &v.num(u64::from(invite.uses)))]),
    };
    let mut h = format!(
        r#"<p class="crumbs"><a href="/g/{gid}/invites">{back}</a></p><p class="lead">{label}</p>"#,
        gid = seg(&gid),
        back = esc(v.t("invites")),
        label = esc(invite.label.as_deref().unwrap_or(v.t("invite-no-label"))),
    );
    if st == InviteState::Usable {
        h.push_str(&format!(
            r#"<p class="qr"><img src="/api/v1/groups/{gid}/invites/{iid}/qr?format=png" width="280" height="280" alt="{alt}"></p><p class="hint">{hint}</p>"#,
            gid = seg(&gid),
            iid = invite.id,
            alt = esc(v.t("qr-alt")),
            hint = esc(v.t("qr-hint")),
        ));
    }
    h.push_str(&format!(
        r#"<p><strong>{state}</strong></p><p>{expiry}</p><p>{uses}</p><p class="link"><label for="invite-url">{ll}</label><input id="invite-url" readonly value="{url}"></p>"#,
        state = esc(invite_state_text(&v, st)),
        expiry = esc(&expiry),
        uses = esc(&uses),
        ll = esc(v.t("invite-link")),
        url = esc(&url),
    ));
    if st == InviteState::Usable {
        h.push_str(&v.button_form(
            &format!("/g/{}/invites/{}/revoke", seg(&gid), invite.id),
            &[],
            v.t("revoke"),
            "danger",
        ));
    }
    Ok(v.page(&ctx.group.settings.name, &h))
}

async fn revoke_invite(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, iid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    invites::revoke(&state.app, &ctx, iid).await?;
    Ok(see_other(&format!("/g/{}/invites/{}", seg(&gid), iid)))
}

// ---- moderation ----

/// Open reports shown at once on the moderation page (they are worked through, not browsed).
const REPORTS_PAGE: u32 = 100;
/// The newest entries of the moderation log shown on its page.
const LOG_PAGE: u32 = 50;

async fn moderation_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    let reports = moderation::reports(&state.app, &ctx, true, None, REPORTS_PAGE).await?;
    let log = moderation::log(&state.app, &ctx, None, LOG_PAGE).await?;
    let mut h = format!(
        r#"<p class="crumbs"><a href="/g/{gid}">{}</a> · <a href="/g/{gid}/members">{}</a></p><section><h2>{}</h2>"#,
        esc(&ctx.group.settings.name),
        esc(v.t("members")),
        esc(v.t("open-reports")),
        gid = seg(&gid),
    );
    if reports.is_empty() {
        h.push_str(&format!("<p>{}</p>", esc(v.t("no-reports"))));
    }
    for r in reports {
        h.push_str(&format!(
            r#"<article class="post"><p class="byline"><time>{}</time></p><p><strong>{}</strong> {}</p><blockquote>{}</blockquote><div class="actions">"#,
            esc(&v.time(r.created_at)),
            esc(v.t("report-reason")),
            esc(&r.reason),
            esc_text(&r.post_body),
        ));
        h.push_str(&v.button_form(
            &format!("/g/{}/p/{}/remove", seg(&gid), seg(&r.post_public_id)),
            &[("reason", &r.reason)],
            v.t("remove-post"),
            "danger",
        ));
        h.push_str(&v.button_form(
            &format!("/g/{}/reports/{}/dismiss", seg(&gid), r.id),
            &[],
            v.t("dismiss"),
            "secondary",
        ));
        h.push_str("</div></article>");
    }
    h.push_str(&format!(
        r#"</section><section><h2>{}</h2><table><thead><tr><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>"#,
        esc(v.t("moderation-log")),
        esc(v.t("when")),
        esc(v.t("who")),
        esc(v.t("action")),
        esc(v.t("detail"))
    ));
    for e in log {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td></tr>",
            esc(&v.time(e.created_at)),
            esc(e.moderator_name.as_deref().unwrap_or("—")),
            esc(&e.action),
            esc(e.target_name.as_deref().unwrap_or("")),
            esc(e.detail.as_deref().unwrap_or("")),
        ));
    }
    h.push_str("</tbody></table></section>");
    Ok(v.page(v.t("moderation"), &h))
}

async fn dismiss_report(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, rid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    moderation::dismiss_report(&state.app, &ctx, rid).await?;
    Ok(see_other(&format!("/g/{}/moderation", seg(&gid))))
}

async fn remove_post(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, pid)): Path<(String, String)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    let reason = form.get("reason").map(str::to_owned);
    moderation::remove_post(&state.app, &ctx, &pid, reason).await?;
    Ok(see_other(&format!("/g/{}/moderation", seg(&gid))))
}
