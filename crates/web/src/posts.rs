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
    let items = posts
        .into_iter()
        .map(|p| {
            let key = match sort {
                FeedSort::Newest => p.publish_at.as_millis(),
                FeedSort::Helpful => i64::from(p.helpful_count),
            };
            (
                vec![i64::from(p.pinned), key, p.id],
                PostView::new(p, &ctx.group.public_id),
            )
        })
        .collect();
    Ok(Json(Page::from_overfetch_parts(items, limit)))
}

fn clean_title(title: Option<String>) -> ApiResult<Option<String>> {
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
    let publish_at = match req.publish_at {
        None => now,
        Some(t) if t <= now => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "publish_at: must be in the future (leave it out to publish now)",
            ));
        }
        Some(t) if t > now.plus_secs(MAX_SCHEDULE_SECS) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "publish_at: must be at most a year ahead",
            ));
        }
        Some(t) => t,
    };
    check_attachments(&req.attachments)?;
    let post = state
        .store
        .create_post(NewPost {
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
        })
        .await?;
    federate_post(&state, &ctx, &post, None).await;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(post, &ctx.group.public_id)),
    ))
}

/// Sends a new post to the other nodes of the group (its host, or its members' nodes). The post is
/// stored either way; a failure to queue it is logged.
async fn federate_post(state: &AppState, ctx: &GroupCtx, post: &Post, thread: Option<&Post>) {
    if let Err(e) = state
        .federation
        .local_post_created(&ctx.group, post, &ctx.user, thread)
        .await
    {
        tracing::error!(error = %e, post = %post.public_id, "cannot queue the post for other nodes");
    }
}

async fn get_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    ctx.read()?;
    let post = visible_post(&state, &ctx, &pid).await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
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
    let items = posts
        .into_iter()
        .map(|p| {
            let key = match sort {
                ReplySort::Oldest => p.id,
                ReplySort::Helpful => i64::from(p.helpful_count),
            };
            (vec![key, p.id], PostView::new(p, &ctx.group.public_id))
        })
        .collect();
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
    let post = state
        .store
        .create_post(NewPost {
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
        })
        .await?;
    federate_post(&state, &ctx, &post, Some(&thread)).await;
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
    let edited = state
        .store
        .edit_post(post.id, ctx.user.id, title, body, state.clock.now())
        .await?;
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
    let deleted = state
        .store
        .delete_post(post.id, ctx.user.id, moderator_reason, state.clock.now())
        .await?;
    if own
        && post.origin_id.is_none()
        && let Err(e) = state
            .federation
            .local_post_deleted(&ctx.group, &post, &ctx.user)
            .await
    {
        tracing::error!(error = %e, post = %post.public_id, "cannot queue the deletion for other nodes");
    }
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
    let post = state
        .store
        .set_helpful(post.id, ctx.user.id, on, state.clock.now())
        .await?;
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
    let post = state
        .store
        .accept_answer(question.id, Some(reply.id))
        .await?;
    Ok(Json(PostView::new(post, &ctx.group.public_id)))
}

async fn clear_answer(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    ctx.teach()?;
    let question = visible_post(&state, &ctx, &pid).await?;
    let post = state.store.accept_answer(question.id, None).await?;
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
    let post = state.store.set_pinned(post.id, pinned).await?;
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
