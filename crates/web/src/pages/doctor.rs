//! Doctors' pages: the queue of open questions across their groups, answered from the queue, and
//! one announcement posted to one or several groups at once, now or scheduled.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use caremesh_app::model::Post;
use caremesh_domain::Role;
use serde::Deserialize;

use super::{Form, PageResult, Viewer, esc, esc_text, pager, parse_local_time, see_other, seg};
use crate::error::ApiError;
use crate::page::{PageQuery, encode_cursor_parts};
use crate::state::AppState;
use caremesh_app::groups;
use caremesh_app::posts::{self, Announcement, announce_to_groups};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/doctor/queue", get(queue))
        .route("/doctor/announce", get(announce_page).post(announce))
}

/// Questions on one page of the queue.
const QUEUE_PAGE: u32 = 20;

#[derive(Deserialize, Default)]
struct QueueQuery {
    /// Where the queue continues (the JSON API's queue cursor).
    cursor: Option<String>,
}

async fn queue(
    v: Viewer,
    State(state): State<AppState>,
    Query(q): Query<QueueQuery>,
) -> PageResult {
    let auth = v.require_role(|r| r == Role::Doctor)?;
    let (position, _) = PageQuery {
        cursor: q.cursor,
        limit: None,
    }
    .decode_parts(2)?;
    let first_page = position.is_none();
    let after = position.map(|p| (p[0], p[1]));
    let mut items = posts::doctor_queue(&state.app, &auth.user, after, QUEUE_PAGE + 1).await?;
    let more = items.len() > QUEUE_PAGE as usize;
    items.truncate(QUEUE_PAGE as usize);
    let next = if more {
        items
            .last()
            .map(|i| encode_cursor_parts(&[i.post.publish_at.as_millis(), i.post.id]))
    } else {
        None
    };
    let n = v.num(items.len() as u64);
    let lead = match (first_page, more) {
        (true, false) => v.tf("queue-count", &[("n", &n)]),
        (true, true) => v.tf("queue-count-more", &[("n", &n)]),
        (false, _) => v.t("queue-later").to_owned(),
    };
    let mut h = format!(r#"<p class="lead">{}</p>"#, esc(&lead));
    if items.is_empty() {
        h.push_str(&format!("<p>{}</p>", esc(v.t("queue-empty"))));
    }
    for (i, item) in items.iter().enumerate() {
        let p = &item.post;
        let gid = &item.group_public_id;
        let thread = format!("/g/{}/p/{}", seg(gid), seg(&p.public_id));
        h.push_str(&format!(
            r#"<article class="post" aria-labelledby="q-{i}"><p class="kind">{group}</p><h2 id="q-{i}"><a href="{thread}">{title}</a></h2><p class="byline"><span class="author">{author}</span> · <time>{time}</time></p><div class="body">{body}</div>
<form method="post" action="{thread}/reply" class="stack">{csrf}<input type="hidden" name="back" value="/doctor/queue">
<label for="a-{i}">{al}</label><textarea id="a-{i}" name="body" rows="3" required></textarea>
<button type="submit" class="primary">{ab}</button></form></article>"#,
            group = esc(&item.group_name),
            title = esc(p.title.as_deref().unwrap_or(v.t("kind-question"))),
            author = esc(&p.author.name),
            time = esc(&v.time(p.publish_at)),
            body = esc_text(&p.body),
            csrf = v.csrf_field(),
            al = esc(v.t("answer")),
            ab = esc(v.t("answer-submit")),
        ));
    }
    h.push_str(&pager(
        &v,
        "/doctor/queue",
        next.as_deref(),
        !first_page,
        "next-page",
        "first-page",
        "",
    ));
    Ok(v.page(v.t("nav-queue"), &h))
}

async fn announce_page(v: Viewer, State(state): State<AppState>) -> PageResult {
    let auth = v.require_role(|r| r == Role::Doctor)?;
    let groups = groups::teaching_groups(&state.app, &auth.user).await?;
    let mut boxes = String::new();
    for g in &groups {
        boxes.push_str(&format!(
            r#"<label class="check"><input type="checkbox" name="group" value="{id}"> {name}</label>"#,
            id = esc(&g.public_id),
            name = esc(&g.settings.name)
        ));
    }
    let h = format!(
        r#"<form method="post" action="/doctor/announce" class="stack">{csrf}
<fieldset><legend>{gl}</legend>{boxes}</fieldset>
<label for="title">{tl}</label><input id="title" name="title" required maxlength="200">
<label for="body">{bl}</label><textarea id="body" name="body" rows="8" required></textarea>
<label class="check"><input type="checkbox" name="pinned" value="1"> {pl}</label>
<label for="publish_at">{sl}</label><input id="publish_at" name="publish_at" type="datetime-local" aria-describedby="s-hint"><p id="s-hint" class="hint">{sh}</p>
<button type="submit" class="primary">{b}</button></form>"#,
        csrf = v.csrf_field(),
        gl = esc(v.t("announce-groups")),
        tl = esc(v.t("announce-title")),
        bl = esc(v.t("announce-body")),
        pl = esc(v.t("announce-pin")),
        sl = esc(v.t("announce-schedule")),
        sh = esc(v.t("announce-schedule-hint")),
        b = esc(v.t("announce-submit")),
    );
    Ok(v.page(v.t("nav-announce"), &h))
}

async fn announce(v: Viewer, State(state): State<AppState>, form: Form) -> PageResult {
    v.check_csrf(&form)?;
    let auth = v.require_role(|r| r == Role::Doctor)?;
    let chosen = form.all("group");
    let publish_at = match form
        .get("publish_at")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => Some(parse_local_time(s).ok_or_else(|| {
            ApiError::unprocessable("invalid_field", "publish_at: not a date and time")
        })?),
    };
    let announcement = Announcement {
        title: Some(form.text("title")),
        body: form.text("body"),
        pinned: form.checked("pinned"),
        publish_at,
    };
    let posted: Vec<(String, String, Post)> =
        announce_to_groups(&state.app, &auth.user, &chosen, announcement)
            .await?
            .into_iter()
            .map(|(ctx, p)| (ctx.group.public_id, ctx.group.settings.name, p))
            .collect();
    if posted.len() == 1 {
        let (gid, _, p) = &posted[0];
        return Ok(see_other(&format!(
            "/g/{}/p/{}",
            seg(gid),
            seg(&p.public_id)
        )));
    }
    let mut h = format!(
        r#"<p role="status">{}</p><ul class="list">"#,
        esc(&v.tf("announced", &[("n", &v.num(posted.len() as u64))]))
    );
    for (gid, name, p) in &posted {
        h.push_str(&format!(
            r#"<li><a href="/g/{}/p/{}">{}</a></li>"#,
            seg(gid),
            seg(&p.public_id),
            esc(name)
        ));
    }
    h.push_str("</ul>");
    if let Some(t) = publish_at {
        h.push_str(&format!(
            "<p>{}</p>",
            esc(&v.tf("scheduled-for", &[("time", &v.time(t))]))
        ));
    }
    Ok(v.page(v.t("nav-announce"), &h))
}
