//! Posts in a group: the feed, announcements (pinned, scheduled), questions, threads of replies,
//! edits with their history, deletes that leave tombstones, "helpful" marks, accepted answers,
//! reports, search, and the doctors' queue of open questions.
//!
//! Text is returned exactly as stored (cleaned of control characters, never turned into HTML);
//! clients must show it as text.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use caremesh_domain::{
    GroupRole, PostKind, Role, Timestamp, clean_line, clean_text, group::limits,
};
use std::collections::HashMap;

use caremesh_federation::credentials::CredentialBadge;
use caremesh_federation::groups::NoteDraft;
use caremesh_store::{DeletedBy, FeedPosition, FeedSort, NewPost, Post, ReplySort};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::groups::{GroupCtx, new_public_id};
use crate::library::LibraryItemView;
use crate::media::AttachmentView;
use crate::page::{Page, PageQuery};
use crate::state::AppState;

/// Most attachments on one post.
const MAX_ATTACHMENTS: usize = 10;
/// How far ahead an announcement can be scheduled.
const MAX_SCHEDULE_SECS: i64 = 366 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups/{gid}/posts", get(feed).post(create_post))
        .route("/api/v1/groups/{gid}/posts/scheduled", get(scheduled))
        .route(
            "/api/v1/groups/{gid}/posts/{pid}",
            get(get_post).patch(edit_post).delete(delete_post),
        )
        .route(
            "/api/v1/groups/{gid}/posts/{pid}/replies",
            get(replies).post(create_reply),
        )
        .route("/api/v1/groups/{gid}/posts/{pid}/history", get(history))
        .route(
            "/api/v1/groups/{gid}/posts/{pid}/helpful",
            put(mark_helpful).delete(unmark_helpful),
        )
        .route(
            "/api/v1/groups/{gid}/posts/{pid}/accepted-answer",
            put(accept_answer).delete(clear_answer),
        )
        .route(
            "/api/v1/groups/{gid}/posts/{pid}/pin",
            put(pin).delete(unpin),
        )
        .route("/api/v1/groups/{gid}/posts/{pid}/reports", post(report))
        .route("/api/v1/groups/{gid}/search", get(search))
        .route("/api/v1/doctor/queue", get(doctor_queue))
        .route("/api/v1/announcements", post(announce))
}

#[derive(Serialize)]
pub struct AuthorView {
    /// The author's membership id in the group (`null` once it is gone).
    pub member_id: Option<i64>,
    pub name: String,
    pub role: Option<GroupRole>,
    /// The actor URL of an author on another node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// For doctors: the credential their hospital signed, as this node checked it
    /// (`verified`, `expired`, `revoked` or `unverified`, and the issuing hospital).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialBadge>,
}

/// A post as the API shows it. Deleted posts keep their place as tombstones: no title, an empty
/// body, no attachments.
#[derive(Serialize)]
pub struct PostView {
    pub id: String,
    pub kind: PostKind,
    /// For replies: the id of the thread's first post.
    pub thread: Option<String>,
    pub author: AuthorView,
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    pub publish_at: Timestamp,
    pub created_at: Timestamp,
    pub edited: bool,
    pub edited_at: Option<Timestamp>,
    pub deleted: bool,
    pub deleted_by: Option<DeletedBy>,
    pub helpful_count: u32,
    pub marked_helpful: bool,
    pub reply_count: u32,
    pub accepted_answer: Option<String>,
    pub answered_by_doctor: bool,
    pub attachments: Vec<AttachmentView>,
}

impl PostView {
    pub fn new(p: Post, group_public_id: &str) -> Self {
        Self {
            id: p.public_id,
            kind: p.kind,
            thread: p.thread_public_id,
            author: AuthorView {
                member_id: p.author.member_id,
                name: p.author.name,
                role: p.author.role,
                actor: p.author.actor_id,
                credential: None,
            },
            title: p.title,
            body: p.body,
            pinned: p.pinned,
            publish_at: p.publish_at,
            created_at: p.created_at,
            edited: p.edited_at.is_some(),
            edited_at: p.edited_at,
            deleted: p.deleted_at.is_some(),
            deleted_by: p.deleted_by,
            helpful_count: p.helpful_count,
            marked_helpful: p.marked_helpful,
            reply_count: p.reply_count,
            accepted_answer: p.accepted_reply_public_id,
            answered_by_doctor: p.answered_by_doctor,
            attachments: p
                .attachments
                .into_iter()
                .map(|a| AttachmentView::new(a, group_public_id))
                .collect(),
        }
    }
}

/// Posts as the API shows them, with "verified by <hospital>" for the doctors among their
/// authors: this node's own doctors from the credential it keeps, other nodes' doctors from the
/// credential their hospital signed, checked against that hospital's key.
pub(crate) async fn post_views(
    state: &AppState,
    posts: Vec<Post>,
    group_public_id: &str,
) -> Vec<PostView> {
    let badges = author_badges(state, &posts).await;
    posts
        .into_iter()
        .map(|p| {
            let badge = badge_key(&p).and_then(|k| badges.get(&k).cloned());
            let mut v = PostView::new(p, group_public_id);
            v.author.credential = badge;
            v
        })
        .collect()
}

/// The badge of a post's author, from `author_badges`.
pub(crate) fn badge_of<'a>(
    badges: &'a HashMap<String, CredentialBadge>,
    p: &Post,
) -> Option<&'a CredentialBadge> {
    badge_key(p).and_then(|k| badges.get(&k))
}

fn badge_key(p: &Post) -> Option<String> {
    match (&p.author.actor_id, p.author.user_id) {
        (Some(actor), _) => Some(actor.clone()),
        (None, Some(u)) => Some(format!("user:{}", u.0)),
        _ => None,
    }
}

/// The credential badges of the posts' authors, by author.
pub(crate) async fn author_badges(
    state: &AppState,
    posts: &[Post],
) -> HashMap<String, CredentialBadge> {
    let mut out = HashMap::new();
    for p in posts {
        let Some(key) = badge_key(p) else { continue };
        // Only doctors carry credentials: on this node they teach in the group; authors of other
        // nodes are looked up in the badge cache first.
        let teaches = p.author.role.is_some_and(GroupRole::can_teach);
        if out.contains_key(&key)
            || p.deleted_at.is_some()
            || (p.author.actor_id.is_none() && !teaches)
        {
            continue;
        }
        let badge = match (&p.author.actor_id, p.author.user_id) {
            (Some(actor), _) => state.federation.remote_badge(actor).await,
            (None, Some(u)) => state.federation.local_badge(u).await,
            _ => None,
        };
        if let Some(b) = badge {
            out.insert(key, b);
        }
    }
    out
}

/// Runs a federation step after a change that is stored already: a failure to queue it is
/// logged, and the change stands.
pub(crate) async fn federate<F>(what: &str, step: F)
where
    F: std::future::Future<Output = Result<(), caremesh_federation::FederationError>>,
{
    if let Err(e) = step.await {
        tracing::error!(error = %e, "cannot queue {what} for other nodes");
    }
}

/// The post `pid` of the group as the asker may see it: scheduled announcements stay hidden from
/// those who cannot teach or moderate.
async fn visible_post(state: &AppState, ctx: &GroupCtx, pid: &str) -> ApiResult<Post> {
    let post = state
        .store
        .post_by_public_id(ctx.group.id, pid, Some(ctx.user.id))
        .await?;
    let staff = ctx.role().is_some_and(GroupRole::can_moderate);
    if post.publish_at > state.clock.now() && !staff {
        return Err(ApiError::not_found("post"));
    }
    Ok(post)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// `newest` (default) or `helpful`.
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn feed(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> ApiResult<Json<Page<PostView>>> {
    ctx.read()?;
    let sort = match q.sort.as_deref() {
        None | Some("newest") => FeedSort::Newest,
        Some("helpful") => FeedSort::Helpful,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "sort must be newest or helpful",
            ));
        }
    };
    let (position, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode_parts(3)?;
    let after = position.map(|p| FeedPosition {
        pinned: p[0] != 0,
        key: p[1],
        id: p[2],
    });
    let posts = state
        .store
        .feed(
            ctx.group.id,
            Some(ctx.user.id),
            sort,
            after,
            limit + 1,
            state.clock.now(),
        )
        .await?;
    let positions: Vec<Vec<i64>> = posts
        .iter()
        .map(|p| {
            let key = match sort {
                FeedSort::Newest => p.publish_at.as_millis(),
                FeedSort::Helpful => i64::from(p.helpful_count),
            };
            vec![i64::from(p.pinned), key, p.id]
        })
        .collect();
    let views = post_views(&state, posts, &ctx.group.public_id).await;
    let items = positions.into_iter().zip(views).collect();
    Ok(Json(Page::from_overfetch_parts(items, limit)))
}

/// When a post is published: now, or a time ahead (at most a year) for a scheduled announcement.
pub(crate) fn publish_time(wanted: Option<Timestamp>, now: Timestamp) -> ApiResult<Timestamp> {
    match wanted {
        None => Ok(now),
        Some(t) if t <= now => Err(ApiError::unprocessable(
            "invalid_field",
            "publish_at: must be in the future (leave it out to publish now)",
        )),
        Some(t) if t > now.plus_secs(MAX_SCHEDULE_SECS) => Err(ApiError::unprocessable(
            "invalid_field",
            "publish_at: must be at most a year ahead",
        )),
        Some(t) => Ok(t),
    }
}

/// One announcement by a doctor to several groups at once, hosted here or on partner nodes.
pub(crate) struct Announcement {
    pub title: Option<String>,
    pub body: String,
    pub pinned: bool,
    pub publish_at: Timestamp,
}

/// Posts one announcement to each of the groups, after checking that the doctor teaches in every
/// one of them (so a refusal posts nothing), and sends each to the group's other nodes: a group
/// hosted elsewhere gets it from here and its host checks, pins and forwards it.
pub(crate) async fn announce_to_groups(
    state: &AppState,
    auth: &AuthUser,
    group_ids: &[String],
    a: Announcement,
) -> ApiResult<Vec<(GroupCtx, Post)>> {
    if auth.user.role != Role::Doctor {
        return Err(ApiError::forbidden(
            "announcements to several groups are for doctors",
        ));
    }
    if group_ids.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "groups: choose at least one group",
        ));
    }
    let mut ctxs: Vec<GroupCtx> = Vec::with_capacity(group_ids.len());
    for gid in group_ids {
        if ctxs.iter().any(|c| &c.group.public_id == gid) {
            continue;
        }
        let ctx = crate::groups::load_ctx(state, auth, gid).await?;
        ctx.teach()?;
        ctxs.push(ctx);
    }
    let now = state.clock.now();
    let mut posted = Vec::with_capacity(ctxs.len());
    for ctx in ctxs {
        let new = NewPost {
            public_id: new_public_id()?,
            group_id: ctx.group.id,
            kind: PostKind::Announcement,
            thread_id: None,
            author: auth.user.id,
            title: a.title.clone(),
            body: a.body.clone(),
            pinned: a.pinned,
            publish_at: a.publish_at,
            created_at: now,
            attachments: Vec::new(),
        };
        let post = write_post(state, &ctx, new, None).await?;
        posted.push((ctx, post));
    }
    Ok(posted)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceRequest {
    /// Ids of the groups, as the doctor's node knows them (hosted here or mirrored).
    groups: Vec<String>,
    title: Option<String>,
    body: String,
    #[serde(default = "yes")]
    pinned: bool,
    publish_at: Option<Timestamp>,
}

fn yes() -> bool {
    true
}

#[derive(Serialize)]
struct AnnouncedView {
    group: String,
    post: PostView,
}

/// A doctor's announcement to several groups in one action.
async fn announce(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<AnnounceRequest>,
) -> ApiResult<(StatusCode, Json<Page<AnnouncedView>>)> {
    if req.groups.len() > 50 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "groups: at most 50 groups at once",
        ));
    }
    let a = Announcement {
        title: clean_title(req.title)?,
        body: clean_text("body", &req.body, limits::POST_BODY, false)?,
        pinned: req.pinned,
        publish_at: publish_time(req.publish_at, state.clock.now())?,
    };
    let posted = announce_to_groups(&state, &auth, &req.groups, a).await?;
    Ok((
        StatusCode::CREATED,
        Json(Page {
            items: posted
                .into_iter()
                .map(|(ctx, p)| AnnouncedView {
                    group: ctx.group.public_id.clone(),
                    post: PostView::new(p, &ctx.group.public_id),
                })
                .collect(),
            next_cursor: None,
        }),
    ))
}

pub(crate) fn clean_title(title: Option<String>) -> ApiResult<Option<String>> {
    match title {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => Ok(Some(clean_line("title", &t, limits::POST_TITLE)?)),
    }
}

fn check_attachments(ids: &[String]) -> ApiResult<()> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("attachments: at most {MAX_ATTACHMENTS} per post"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePost {
    /// `announcement` (doctors and owner) or `question`.
    kind: String,
    title: Option<String>,
    body: String,
    /// Announcements only: shown first in the feed.
    #[serde(default)]
    pinned: bool,
    /// Announcements only: publish later (RFC 3339, in the future, at most a year ahead).
    publish_at: Option<Timestamp>,
    #[serde(default)]
    attachments: Vec<String>,
}

async fn create_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiJson(req): ApiJson<CreatePost>,
) -> ApiResult<(StatusCode, Json<PostView>)> {
    ctx.read()?;
    let kind = match req.kind.as_str() {
        "announcement" => PostKind::Announcement,
        "question" => PostKind::Question,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "kind: must be announcement or question (replies go to the thread's replies)",
            ));
        }
    };
    if kind == PostKind::Announcement || req.pinned || req.publish_at.is_some() {
        ctx.teach()?;
    }
    if kind != PostKind::Announcement && (req.pinned || req.publish_at.is_some()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "pinned and publish_at are for announcements only",
        ));
    }
    let now = state.clock.now();
    let publish_at = publish_time(req.publish_at, now)?;
    check_attachments(&req.attachments)?;
    let new = NewPost {
        public_id: new_public_id()?,
        group_id: ctx.group.id,
        kind,
        thread_id: None,
        author: ctx.user.id,
        title: clean_title(req.title)?,
        body: clean_text("body", &req.body, limits::POST_BODY, false)?,
        pinned: req.pinned,
        publish_at,
        created_at: now,
        attachments: req.attachments,
    };
    let post = write_post(&state, &ctx, new, None).await?;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(post, &ctx.group.public_id)),
    ))
}

/// Writes a post on this node. What the group's other nodes must receive (the post, signed by
/// its author) is queued in the same transaction; a doctor's answer also tells members' nodes that
/// the question is answered. Shared by the API and the pages.
pub(crate) async fn write_post(
    state: &AppState,
    ctx: &GroupCtx,
    new: NewPost,
    thread: Option<&Post>,
) -> ApiResult<Post> {
    // The files go with the post: the other nodes fetch them and check them against its hashes.
    let mut files = Vec::with_capacity(new.attachments.len());
    for id in &new.attachments {
        if let Ok(a) = state.store.attachment_by_public_id(ctx.group.id, id).await {
            files.push(a);
        }
    }
    let draft = NoteDraft {
        attachments: &files,
        ..NoteDraft::of_new(&new)
    };
    let outbox = state
        .federation
        .post_created_entries(&ctx.group, &draft, &ctx.user, thread)
        .await?;
    let post = state.store.create_post_with(new, outbox).await?;
    state.federation.wake();
    if let Some(t) = thread
        && ctx.role().is_some_and(GroupRole::can_teach)
        && let Ok(t) = state
            .store
            .post_by_public_id(ctx.group.id, &t.public_id, None)
            .await
    {
        federate(
            "a question's state",
            state.federation.post_state_changed(&ctx.group, &t),
        )
        .await;
    }
    Ok(post)
}

/// Its author edits a post; the new version is queued for the other nodes with the edit.
pub(crate) async fn edit_own_post(
    state: &AppState,
    ctx: &GroupCtx,
    post: &Post,
    title: Option<String>,
    body: String,
) -> ApiResult<Post> {
    if post.author.user_id != Some(ctx.user.id) {
        return Err(ApiError::forbidden("only its author can edit a post"));
    }
    let now = state.clock.now();
    let outbox = state
        .federation
        .post_edited_entries(&ctx.group, post, title.as_deref(), &body, now, &ctx.user)
        .await?;
    let edited = state
        .store
        .edit_post_with(post.id, ctx.user.id, title, body, now, outbox)
        .await?;
    state.federation.wake();
    Ok(edited)
}

/// Its author deletes a post (the deletion is queued for the other nodes with it), or a
/// moderator removes someone else's (`moderator_reason` is `Some`; logged, and the group's other
/// nodes show the removal).
pub(crate) async fn delete_or_remove(
    state: &AppState,
    ctx: &GroupCtx,
    post: &Post,
    moderator_reason: Option<Option<String>>,
) -> ApiResult<Post> {
    let by_moderator = moderator_reason.is_some();
    let outbox = if by_moderator {
        Vec::new()
    } else {
        state
            .federation
            .post_deleted_entries(&ctx.group, post, &ctx.user)
            .await?
    };
    let deleted = state
        .store
        .delete_post_with(
            post.id,
            ctx.user.id,
            moderator_reason,
            state.clock.now(),
            outbox,
        )
        .await?;
    state.federation.wake();
    if by_moderator {
        federate(
            "a removal",
            state.federation.post_state_changed(&ctx.group, &deleted),
        )
        .await;
    }
    Ok(deleted)
}

/// A member marks a post helpful or takes the mark back. In a group hosted elsewhere the mark
/// goes to the host with it; in a group hosted here the new count goes to the members' nodes.
pub(crate) async fn mark_helpful_as(
    state: &AppState,
    ctx: &GroupCtx,
    post: &Post,
    on: bool,
) -> ApiResult<Post> {
    ctx.read()?;
    let outbox = state
        .federation
        .helpful_entries(&ctx.group, post, &ctx.user, on)
        .await?;
    let post = state
        .store
        .set_helpful_with(post.id, ctx.user.id, on, state.clock.now(), outbox)
        .await?;
    state.federation.wake();
    federate(
        "a helpful mark",
        state.federation.post_state_changed(&ctx.group, &post),
    )
    .await;
    Ok(post)
}

/// A doctor of the group accepts a reply as the answer to a question (or clears it).
pub(crate) async fn accept_as(
    state: &AppState,
    ctx: &GroupCtx,
    question: &Post,
    reply: Option<&Post>,
) -> ApiResult<Post> {
    ctx.teach()?;
    let post = state
        .store
        .accept_answer(question.id, reply.map(|r| r.id))
        .await?;
    federate(
        "an accepted answer",
        state.federation.post_state_changed(&ctx.group, &post),
    )
    .await;
    Ok(post)
}

/// A doctor of the group pins a post or unpins it.
pub(crate) async fn pin_as(
    state: &AppState,
    ctx: &GroupCtx,
    post: &Post,
    pinned: bool,
) -> ApiResult<Post> {
    ctx.teach()?;
    let post = state.store.set_pinned(post.id, pinned).await?;
    federate(
        "a pin",
        state.federation.post_state_changed(&ctx.group, &post),
    )
    .await;
    Ok(post)
}

async fn get_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    ctx.read()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    let mut views = post_views(&state, vec![post], &ctx.group.public_id).await;
    Ok(Json(views.remove(0)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepliesQuery {
    /// `oldest` (default) or `helpful`.
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn replies(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RepliesQuery>,
) -> ApiResult<Json<Page<PostView>>> {
    ctx.read()?;
    let sort = match q.sort.as_deref() {
        None | Some("oldest") => ReplySort::Oldest,
        Some("helpful") => ReplySort::Helpful,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "sort must be oldest or helpful",
            ));
        }
    };
    let thread = visible_post(&state, &ctx, &pid).await?;
    let (position, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode_parts(2)?;
    let after = position.map(|p| (p[0], p[1]));
    let posts = state
        .store
        .replies(thread.id, Some(ctx.user.id), sort, after, limit + 1)
        .await?;
    let positions: Vec<Vec<i64>> = posts
        .iter()
        .map(|p| {
            let key = match sort {
                ReplySort::Oldest => p.id,
                ReplySort::Helpful => i64::from(p.helpful_count),
            };
            vec![key, p.id]
        })
        .collect();
    let views = post_views(&state, posts, &ctx.group.public_id).await;
    let items = positions.into_iter().zip(views).collect();
    Ok(Json(Page::from_overfetch_parts(items, limit)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateReply {
    body: String,
    #[serde(default)]
    attachments: Vec<String>,
}

async fn create_reply(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<CreateReply>,
) -> ApiResult<(StatusCode, Json<PostView>)> {
    ctx.read()?;
    let thread = visible_post(&state, &ctx, &pid).await?;
    if thread.thread_id.is_some() {
        return Err(ApiError::conflict(
            "not_top_level",
            "reply to the thread's first post, not to a reply",
        ));
    }
    check_attachments(&req.attachments)?;
    let now = state.clock.now();
    let new = NewPost {
        public_id: new_public_id()?,
        group_id: ctx.group.id,
        kind: PostKind::Reply,
        thread_id: Some(thread.id),
        author: ctx.user.id,
        title: None,
        body: clean_text("body", &req.body, limits::POST_BODY, false)?,
        pinned: false,
        publish_at: now,
        created_at: now,
        attachments: req.attachments,
    };
    let post = write_post(&state, &ctx, new, Some(&thread)).await?;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(post, &ctx.group.public_id)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditPost {
    title: Option<String>,
    body: String,
}

async fn edit_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<EditPost>,
) -> ApiResult<Json<PostView>> {
    ctx.read()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    if post.author.user_id != Some(ctx.user.id) {
        return Err(ApiError::forbidden("only its author can edit a post"));
    }
    let title = if post.kind == PostKind::Reply {
        None
    } else {
        clean_title(req.title)?
    };
    let body = clean_text("body", &req.body, limits::POST_BODY, false)?;
    let edited = edit_own_post(&state, &ctx, &post, title, body).await?;
    Ok(Json(PostView::new(edited, &ctx.group.public_id)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    reason: Option<String>,
}

/// Its author deletes a post; a moderator removes someone else's (logged).
async fn delete_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    body: Option<ApiJson<RemoveBody>>,
) -> ApiResult<Json<PostView>> {
    let post = if ctx.member.is_some() {
        visible_post(&state, &ctx, &pid).await?
    } else {
        // Administrators who are not members remove reported posts they cannot otherwise read.
        state
            .store
            .post_by_public_id(ctx.group.id, &pid, None)
            .await?
    };
    let own = post.author.user_id == Some(ctx.user.id);
    let moderator_reason = if own {
        None
    } else {
        ctx.moderate()?;
        let reason = match body.and_then(|b| b.0.reason) {
            None => None,
            Some(r) => Some(clean_text("reason", &r, limits::REPORT_REASON, true)?)
                .filter(|r| !r.is_empty()),
        };
        Some(reason)
    };
    let deleted = delete_or_remove(&state, &ctx, &post, moderator_reason).await?;
    Ok(Json(PostView::new(deleted, &ctx.group.public_id)))
}

#[derive(Serialize)]
struct EditView {
    title: Option<String>,
    body: String,
    replaced_at: Timestamp,
    reason: String,
}

/// Earlier versions of a post, for moderators.
async fn history(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<Page<EditView>>> {
    ctx.moderate()?;
    let post = state
        .store
        .post_by_public_id(ctx.group.id, &pid, None)
        .await?;
    let edits = state.store.post_history(post.id).await?;
    Ok(Json(Page {
        items: edits
            .into_iter()
            .map(|e| EditView {
                title: e.title,
                body: e.body,
                replaced_at: e.replaced_at,
                reason: e.reason,
            })
            .collect(),
        next_cursor: None,
    }))
}

async fn set_helpful(
    state: AppState,
    ctx: GroupCtx,
    pid: String,
    on: bool,
) -> ApiResult<Json<PostView>> {
    ctx.read()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    let post = mark_helpful_as(&state, &ctx, &post, on).await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
}

async fn mark_helpful(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    set_helpful(state, ctx, pid, true).await
}

async fn unmark_helpful(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    set_helpful(state, ctx, pid, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    /// The id of a reply in this question's thread.
    reply: String,
}

async fn accept_answer(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<AcceptBody>,
) -> ApiResult<Json<PostView>> {
    ctx.teach()?;
    let question = visible_post(&state, &ctx, &pid).await?;
    let reply = visible_post(&state, &ctx, &req.reply).await?;
    let post = accept_as(&state, &ctx, &question, Some(&reply)).await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
}

async fn clear_answer(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    ctx.teach()?;
    let question = visible_post(&state, &ctx, &pid).await?;
    let post = accept_as(&state, &ctx, &question, None).await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
}

async fn set_pin(
    state: AppState,
    ctx: GroupCtx,
    pid: String,
    pinned: bool,
) -> ApiResult<Json<PostView>> {
    ctx.teach()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    let post = pin_as(&state, &ctx, &post, pinned).await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
}

async fn pin(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    set_pin(state, ctx, pid, true).await
}

async fn unpin(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    set_pin(state, ctx, pid, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    reason: String,
}

async fn report(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<ReportBody>,
) -> ApiResult<(StatusCode, Json<crate::moderation::ReportView>)> {
    ctx.read()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    let reason = clean_text("reason", &req.reason, limits::REPORT_REASON, false)?;
    let report = state
        .store
        .report_post(
            ctx.group.id,
            post.id,
            ctx.user.id,
            reason,
            state.clock.now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::moderation::ReportView::new(report)),
    ))
}

async fn scheduled(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PostView>>> {
    ctx.read()?;
    ctx.moderate()?;
    let (position, limit) = q.decode_parts(2)?;
    let posts = state
        .store
        .scheduled_posts(
            ctx.group.id,
            position.map(|p| (p[0], p[1])),
            limit + 1,
            state.clock.now(),
        )
        .await?;
    let items = posts
        .into_iter()
        .map(|p| {
            (
                vec![p.publish_at.as_millis(), p.id],
                PostView::new(p, &ctx.group.public_id),
            )
        })
        .collect();
    Ok(Json(Page::from_overfetch_parts(items, limit)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: Option<String>,
    /// `posts` (default) or `library`.
    #[serde(rename = "in")]
    scope: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SearchPage {
    Posts(Page<PostView>),
    Library(Page<LibraryItemView>),
}

async fn search(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchPage>> {
    ctx.read()?;
    let text = q.q.as_deref().map(str::trim).unwrap_or_default();
    if text.is_empty() || text.chars().count() > limits::SEARCH_QUERY {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("q must be 1 to {} characters", limits::SEARCH_QUERY),
        ));
    }
    let (before, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    match q.scope.as_deref() {
        None | Some("posts") => {
            let posts = state
                .store
                .search_posts(
                    ctx.group.id,
                    Some(ctx.user.id),
                    text,
                    before,
                    limit + 1,
                    state.clock.now(),
                )
                .await?;
            let items = posts
                .into_iter()
                .map(|p| (p.id, PostView::new(p, &ctx.group.public_id)))
                .collect();
            Ok(Json(SearchPage::Posts(Page::from_overfetch(items, limit))))
        }
        Some("library") => {
            let found = state
                .store
                .search_library(ctx.group.id, text, before, limit + 1)
                .await?;
            let items = found
                .into_iter()
                .map(|i| (i.id, LibraryItemView::new(i, &ctx.group.public_id)))
                .collect();
            Ok(Json(SearchPage::Library(Page::from_overfetch(
                items, limit,
            ))))
        }
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "in must be posts or library",
        )),
    }
}

#[derive(Serialize)]
struct QueueGroup {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct QueueItemView {
    group: QueueGroup,
    question: PostView,
    /// Where to answer: a reply in the question's thread.
    reply_path: String,
}

/// The doctor's hour: open questions in every group the doctor serves, oldest first.
async fn doctor_queue(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<QueueItemView>>> {
    if auth.user.role != Role::Doctor {
        return Err(ApiError::forbidden("the question queue is for doctors"));
    }
    let (position, limit) = q.decode_parts(2)?;
    let items = state
        .store
        .doctor_queue(
            auth.user.id,
            position.map(|p| (p[0], p[1])),
            limit + 1,
            state.clock.now(),
        )
        .await?;
    let items = items
        .into_iter()
        .map(|i| {
            let pos = vec![i.post.publish_at.as_millis(), i.post.id];
            let reply_path = format!(
                "/api/v1/groups/{}/posts/{}/replies",
                i.group_public_id, i.post.public_id
            );
            let question = PostView::new(i.post, &i.group_public_id);
            (
                pos,
                QueueItemView {
                    group: QueueGroup {
                        id: i.group_public_id,
                        name: i.group_name,
                    },
                    question,
                    reply_path,
                },
            )
        })
        .collect();
    Ok(Json(Page::from_overfetch_parts(items, limit)))
}
