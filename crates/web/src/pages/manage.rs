//! Running groups: creating one (doctors and hospital administrators), and the member list with
//! what moderators do there (admitting or declining join requests, appointing doctors and
//! moderators, removing, banning and unbanning). Every action goes through the same shared
//! use-cases as the JSON API ([`caremesh_app::groups`]), so the same rules hold and the same moderation
//! log entries are written.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use caremesh_app::model::Member;
use caremesh_domain::{GroupRole, Language, MemberListVisibility, MemberState, Role};
use serde::Deserialize;

use super::patient::{load, role_name};
use super::{Form, PageResult, Viewer, esc, esc_text, field_error, pager, see_other, seg};
use crate::error::ApiError;
use crate::groups::GroupCtx;
use crate::page::{PageQuery, encode_cursor};
use crate::state::AppState;
use caremesh_app::groups::{self, NewGroupFields, may_create_groups};

/// Members on one page of the member list.
const MEMBERS_PAGE: u32 = 50;
/// Join requests and bans shown at once (they are worked through, not browsed).
const SHORT_LIST: u32 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups/new", get(new_group_page).post(create_group))
        .route("/g/{gid}/members", get(members_page))
        .route("/g/{gid}/members/{mid}/approve", post(approve))
        .route("/g/{gid}/members/{mid}/reject", post(reject))
        .route("/g/{gid}/members/{mid}/remove", post(remove))
        .route("/g/{gid}/members/{mid}/ban", post(ban))
        .route("/g/{gid}/members/{mid}/unban", post(unban))
        .route("/g/{gid}/members/{mid}/role", post(set_role))
}

// ---- creating a group ----

/// The form's fields in the order they are shown, with their labels: a problem names its field.
const FIELD_LABELS: [(&str, &str); 7] = [
    ("name", "group-name"),
    ("condition", "group-condition"),
    ("condition_code", "group-condition-code"),
    ("city", "group-city"),
    ("language", "group-language"),
    ("description", "group-description"),
    ("rules", "group-rules"),
];

fn new_group_form(v: &Viewer, f: &NewGroupFields, error: Option<(&str, String)>) -> String {
    let bad = error.as_ref().map(|(field, _)| *field);
    let invalid = |field: &str| {
        if bad == Some(field) {
            r#" aria-invalid="true" aria-describedby="form-error""#
        } else {
            ""
        }
    };
    let label = |key: &str| esc(v.t(key));
    let mut h = String::new();
    if let Some((_, message)) = &error {
        h.push_str(&format!(
            r#"<p class="error" role="alert" id="form-error">{}</p>"#,
            esc(message)
        ));
    }
    let lang = if f.language.is_empty() {
        v.lang.as_str()
    } else {
        f.language.as_str()
    };
    let members_open = f.member_list.as_deref() == Some("members");
    h.push_str(&format!(
        r#"<p class="lead">{lead}</p><form method="post" action="/groups/new" class="stack">{csrf}
<label for="name">{l_name}</label><input id="name" name="name" required maxlength="100" value="{name}"{i_name}>
<label for="condition">{l_cond}</label><input id="condition" name="condition" required maxlength="100" value="{cond}"{i_cond}>
<label for="condition_code">{l_code}</label><input id="condition_code" name="condition_code" maxlength="16" value="{code}" autocapitalize="characters"{i_code}>
<label for="city">{l_city}</label><input id="city" name="city" required maxlength="64" value="{city}"{i_city}>
<label for="language">{l_lang}</label><select id="language" name="language"{i_lang}><option value="zh-CN"{zh}>{zh_name}</option><option value="en"{en}>{en_name}</option></select>
<label for="description">{l_desc}</label><textarea id="description" name="description" rows="4" maxlength="2000"{i_desc}>{desc}</textarea>
<label for="rules">{l_rules}</label><textarea id="rules" name="rules" rows="4" maxlength="4000"{i_rules}>{rules}</textarea>
<fieldset><legend>{l_list}</legend>
<label class="check"><input type="radio" name="member_list" value="moderators"{mods}> {l_mods}</label>
<label class="check"><input type="radio" name="member_list" value="members"{all}> {l_all}</label></fieldset>
<button type="submit" class="primary">{submit}</button></form>"#,
        lead = esc(v.t("new-group-hint")),
        csrf = v.csrf_field(),
        l_name = label("group-name"),
        name = esc(&f.name),
        i_name = invalid("name"),
        l_cond = label("group-condition"),
        cond = esc(&f.condition),
        i_cond = invalid("condition"),
        l_code = label("group-condition-code"),
        code = esc(f.condition_code.as_deref().unwrap_or("")),
        i_code = invalid("condition_code"),
        l_city = label("group-city"),
        city = esc(&f.city),
        i_city = invalid("city"),
        l_lang = label("group-language"),
        i_lang = invalid("language"),
        zh = if lang == "zh-CN" { " selected" } else { "" },
        en = if lang == "en" { " selected" } else { "" },
        zh_name = esc(v.t("lang-zh")),
        en_name = esc(v.t("lang-en")),
        l_desc = label("group-description"),
        desc = esc(&f.description),
        i_desc = invalid("description"),
        l_rules = label("group-rules"),
        rules = esc(&f.rules),
        i_rules = invalid("rules"),
        l_list = label("group-member-list"),
        mods = if members_open { "" } else { " checked" },
        all = if members_open { " checked" } else { "" },
        l_mods = label("member-list-moderators"),
        l_all = label("member-list-members"),
        submit = label("create-group-submit"),
    ));
    h
}

async fn new_group_page(v: Viewer) -> PageResult {
    let auth = v.require()?;
    may_create_groups(&auth.user)?;
    let fields = NewGroupFields {
        language: match v.lang {
            Language::ZhCn => "zh-CN".into(),
            Language::En => "en".into(),
        },
        ..NewGroupFields::default()
    };
    Ok(v.page(v.t("new-group"), &new_group_form(&v, &fields, None)))
}

async fn create_group(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let auth = v.require()?;
    may_create_groups(&auth.user)?;
    let code = form.text("condition_code");
    let fields = NewGroupFields {
        name: form.text("name"),
        condition: form.text("condition"),
        condition_code: (!code.trim().is_empty()).then_some(code),
        city: form.text("city"),
        language: form.text("language"),
        description: form.text("description"),
        rules: form.text("rules"),
        member_list: form.get("member_list").map(str::to_owned),
    };
    // The rules of the group's creation, checked first so that the form names the field.
    if let Err(e) = fields.settings() {
        let label = FIELD_LABELS
            .iter()
            .find(|(f, _)| *f == e.field)
            .map_or(v.t("group-member-list"), |(_, key)| v.t(key));
        let message = field_error(&v, label, &e);
        let body = new_group_form(&v, &fields, Some((e.field, message)));
        return Ok(v.page_with_status(StatusCode::UNPROCESSABLE_ENTITY, v.t("new-group"), &body));
    }
    let group = groups::create_group_as(&state.app, &auth.user, &fields).await?;
    Ok(see_other(&format!("/g/{}", seg(&group.public_id))))
}

// ---- members ----

#[derive(Deserialize, Default)]
struct MembersQuery {
    cursor: Option<String>,
}

fn member_line(v: &Viewer, m: &Member) -> String {
    let mut h = format!(
        r#"<strong>{}</strong> · {}"#,
        esc(&m.display_name),
        esc(role_name(v, m.role))
    );
    if m.account_role == Some(Role::Doctor) {
        h.push_str(&format!(
            r#" <span class="badge">{}</span>"#,
            esc(v.t("doctor-account"))
        ));
    }
    if m.actor_id.is_some() {
        h.push_str(&format!(
            r#" <span class="badge">{}</span>"#,
            esc(v.t("remote-member"))
        ));
    }
    h
}

/// What the asker may do to an active member: remove and ban (moderators, to members ranked
/// below them), and change the role (the owner).
fn member_actions(v: &Viewer, ctx: &GroupCtx, m: &Member) -> String {
    let gid = seg(&ctx.group.public_id);
    let mut h = String::new();
    let is_self = m.user_id == Some(ctx.user.id);
    if !is_self && ctx.govern().is_ok() && m.role != GroupRole::Owner && m.user_id.is_some() {
        let mut opts = String::new();
        let mut roles = vec![GroupRole::Member, GroupRole::Moderator];
        if m.account_role == Some(Role::Doctor) {
            roles.push(GroupRole::Doctor);
        }
        for r in roles {
            opts.push_str(&format!(
                r#"<option value="{}"{}>{}</option>"#,
                r.as_str(),
                if r == m.role { " selected" } else { "" },
                esc(role_name(v, r))
            ));
        }
        h.push_str(&format!(
            r#"<form method="post" action="/g/{gid}/members/{mid}/role" class="inline">{csrf}<label for="role-{mid}">{l}</label> <select id="role-{mid}" name="role">{opts}</select> <button type="submit">{b}</button></form>"#,
            mid = m.id,
            csrf = v.csrf_field(),
            l = esc(v.t("member-role")),
            b = esc(v.t("change-role")),
        ));
    }
    if !is_self
        && ctx.moderate().is_ok()
        && ctx.check_outranks(m).is_ok()
        && m.role != GroupRole::Owner
    {
        h.push_str(&format!(
            r#"<details class="remove"><summary>{s}</summary><form method="post" action="/g/{gid}/members/{mid}/remove" class="stack">{csrf}
<label for="reason-{mid}">{l}</label><input id="reason-{mid}" name="reason" maxlength="500">
<div class="actions"><button type="submit" class="danger">{rm}</button><button type="submit" class="danger" formaction="/g/{gid}/members/{mid}/ban">{ban}</button></div></form></details>"#,
            s = esc(&v.tf("remove-or-ban", &[("name", &m.display_name)])),
            mid = m.id,
            csrf = v.csrf_field(),
            l = esc(v.t("removal-reason")),
            rm = esc(v.t("remove-member")),
            ban = esc(v.t("ban-member")),
        ));
    }
    h
}

async fn members_page(
    v: Viewer,
    State(state): State<AppState>,
    Path(gid): Path<String>,
    Query(q): Query<MembersQuery>,
) -> PageResult {
    let ctx = load(&state, &v, &gid).await?;
    ctx.may_list_members(MemberState::Active)?;
    let moderator = ctx.moderate().is_ok();
    let (after, _) = PageQuery {
        cursor: q.cursor.clone(),
        limit: None,
    }
    .decode()?;
    let first_page = after.is_none();
    let back = if ctx.read().is_ok() {
        format!("/g/{}", seg(&gid))
    } else {
        format!("/g/{}/moderation", seg(&gid))
    };
    let mut h = format!(
        r#"<p class="crumbs"><a href="{}">{}</a></p>"#,
        esc(&back),
        esc(&ctx.group.settings.name)
    );
    if moderator && first_page {
        let pending = groups::join_requests(&state.app, &ctx, None, SHORT_LIST).await?;
        h.push_str(&format!(
            r#"<section aria-labelledby="requests-h"><h2 id="requests-h">{}</h2>"#,
            esc(v.t("join-requests"))
        ));
        if pending.is_empty() {
            h.push_str(&format!("<p>{}</p>", esc(v.t("no-join-requests"))));
        }
        h.push_str(r#"<ul class="people">"#);
        for m in &pending {
            h.push_str(&format!(
                r#"<li id="m-{}"><p>{} · <time>{}</time></p>"#,
                m.id,
                member_line(&v, m),
                esc(&v.time(m.updated_at))
            ));
            if let Some(msg) = &m.request_message {
                h.push_str(&format!(r#"<blockquote>{}</blockquote>"#, esc_text(msg)));
            }
            h.push_str(r#"<div class="actions">"#);
            h.push_str(&v.button_form(
                &format!("/g/{}/members/{}/approve", seg(&gid), m.id),
                &[],
                &v.tf("approve", &[("name", &m.display_name)]),
                "primary",
            ));
            h.push_str(&v.button_form(
                &format!("/g/{}/members/{}/reject", seg(&gid), m.id),
                &[],
                &v.tf("reject", &[("name", &m.display_name)]),
                "danger",
            ));
            h.push_str("</div></li>");
        }
        h.push_str("</ul></section>");
    }
    let mut members = groups::members(
        &state.app,
        &ctx,
        MemberState::Active,
        after,
        MEMBERS_PAGE + 1,
    )
    .await?;
    let more = members.len() > MEMBERS_PAGE as usize;
    members.truncate(MEMBERS_PAGE as usize);
    let next = if more {
        members.last().map(|m| encode_cursor(m.id))
    } else {
        None
    };
    h.push_str(&format!(
        r#"<section aria-labelledby="members-h"><h2 id="members-h">{}</h2><ul class="people">"#,
        esc(&v.tf(
            "member-count",
            &[("n", &v.num(u64::from(ctx.group.member_count)))]
        ))
    ));
    for m in &members {
        h.push_str(&format!(
            r#"<li id="m-{}"><p>{}</p>{}</li>"#,
            m.id,
            member_line(&v, m),
            if moderator {
                member_actions(&v, &ctx, m)
            } else {
                String::new()
            }
        ));
    }
    h.push_str("</ul>");
    h.push_str(&pager(
        &v,
        &format!("/g/{}/members", seg(&gid)),
        next.as_deref(),
        !first_page,
        "next-page",
        "first-page",
        "#members-h",
    ));
    h.push_str("</section>");
    if moderator && first_page {
        let banned =
            groups::members(&state.app, &ctx, MemberState::Banned, None, SHORT_LIST).await?;
        if !banned.is_empty() {
            h.push_str(&format!(
                r#"<section aria-labelledby="banned-h"><h2 id="banned-h">{}</h2><ul class="people">"#,
                esc(v.t("banned-members"))
            ));
            for m in &banned {
                h.push_str(&format!(
                    r#"<li id="m-{}"><p>{} · <time>{}</time></p>{}</li>"#,
                    m.id,
                    member_line(&v, m),
                    esc(&v.time(m.updated_at)),
                    v.button_form(
                        &format!("/g/{}/members/{}/unban", seg(&gid), m.id),
                        &[],
                        &v.tf("unban", &[("name", &m.display_name)]),
                        "secondary",
                    )
                ));
            }
            h.push_str("</ul></section>");
        }
    }
    if ctx.group.settings.member_list == MemberListVisibility::Moderators && moderator {
        h.push_str(&format!(
            r#"<p class="hint">{}</p>"#,
            esc(v.t("member-list-closed-hint"))
        ));
    }
    Ok(v.page(v.t("members"), &h))
}

fn back_to_members(gid: &str) -> axum::response::Response {
    see_other(&format!("/g/{}/members", seg(gid)))
}

async fn approve(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::decide_join(&state.app, &ctx, mid, true).await?;
    Ok(back_to_members(&gid))
}

async fn reject(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::decide_join(&state.app, &ctx, mid, false).await?;
    Ok(back_to_members(&gid))
}

fn reason(form: &Form) -> Option<String> {
    form.get("reason")
        .filter(|r| !r.trim().is_empty())
        .map(str::to_owned)
}

async fn remove(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::remove_or_ban(&state.app, &ctx, mid, false, reason(&form)).await?;
    Ok(back_to_members(&gid))
}

async fn ban(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::remove_or_ban(&state.app, &ctx, mid, true, reason(&form)).await?;
    Ok(back_to_members(&gid))
}

async fn unban(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    groups::unban(&state.app, &ctx, mid).await?;
    Ok(back_to_members(&gid))
}

async fn set_role(
    v: Viewer,
    State(state): State<AppState>,
    Path((gid, mid)): Path<(String, i64)>,
    form: Form,
) -> PageResult {
    v.check_csrf(&form)?;
    let ctx = load(&state, &v, &gid).await?;
    let role: GroupRole = form.text("role").parse().map_err(|_| {
        ApiError::unprocessable("invalid_field", "role: must be doctor, moderator or member")
    })?;
    groups::change_role(&state.app, &ctx, mid, role).await?;
    Ok(back_to_members(&gid))
}
