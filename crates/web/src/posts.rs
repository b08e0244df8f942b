//! Posts in a group: the feed, announcements (pinned, scheduled), questions, threads of replies,
//! edits with their history, deletes that leave tombstones, "helpful" marks, accepted answers,
//! reports, search, and the doctors' queue of open questions.
//!
//! Text is returned exactly as stored (cleaned of control characters, never turned into HTML);
//! clients must show it as text.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use caremesh_app::model::CredentialBadge;
use caremesh_app::model::{DeletedBy, FeedPosition, FeedSort, Post, ReplySort};
use caremesh_app::posts;
use caremesh_domain::{GroupRole, PostKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, AuthUser};
use crate::groups::GroupCtx;
use crate::groups::respond;
use crate::library::LibraryItemView;
use crate::media::AttachmentView;
use crate::page::{Page, PageQuery};
use crate::state::AppState;

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
        .route(
            "/api/v1/groups/{gid}/posts/{pid}/remove-author",
            post(remove_author),
        )
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
/// authors (see [`caremesh_app::posts::author_badges`]).
pub(crate) async fn post_views(
    state: &AppState,
    posts: Vec<Post>,
    group_public_id: &str,
) -> Vec<PostView> {
    let badges = posts::author_badges(&state.app, &posts).await;
    posts
        .into_iter()
        .map(|p| {
            let badge = posts::badge_of(&badges, &p).cloned();
            let mut v = PostView::new(p, group_public_id);
            v.author.credential = badge;
            v
        })
        .collect()
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
    let posts = posts::feed(&state.app, &ctx, sort, after, limit + 1).await?;
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
    let a = posts::Announcement {
        title: req.title,
        body: req.body,
        pinned: req.pinned,
        publish_at: req.publish_at,
    };
    let posted = posts::announce_to_groups(&state.app, &auth.user, &req.groups, a).await?;
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
    let new = posts::NewThread {
        kind,
        title: req.title,
        body: req.body,
        pinned: req.pinned,
        publish_at: req.publish_at,
        attachments: req.attachments,
    };
    let post = posts::ask(&state.app, &ctx, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(post, &ctx.group.public_id)),
    ))
}

async fn get_post(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Json<PostView>> {
    let post = posts::post(&state.app, &ctx, &pid).await?;
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
    let (position, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode_parts(2)?;
    let after = position.map(|p| (p[0], p[1]));
    let posts = posts::replies(&state.app, &ctx, &pid, sort, after, limit + 1).await?;
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
    let post = posts::reply(&state.app, &ctx, &pid, &req.body, req.attachments).await?;
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
    let edited = posts::edit_own_post(&state.app, &ctx, &pid, req.title, &req.body).await?;
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
) -> ApiResult<Response> {
    let reason = body.and_then(|b| b.0.reason);
    let deleted = posts::delete_or_remove(&state.app, &ctx, &pid, reason).await?;
    Ok(respond(deleted, |p| {
        Json(PostView::new(p, &ctx.group.public_id)).into_response()
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RemoveAuthor {
    /// Ban rather than remove.
    #[serde(default)]
    ban: bool,
    reason: Option<String>,
}

/// A moderator removes (or bans) the author of a post: also a member of another node, whom this
/// node knows by their posts.
async fn remove_author(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
    body: Option<ApiJson<RemoveAuthor>>,
) -> ApiResult<Response> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let m =
        caremesh_app::groups::remove_author(&state.app, &ctx, &pid, req.ban, req.reason).await?;
    Ok(respond(m, |m| {
        Json(crate::groups::MemberView::new(m)).into_response()
    }))
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
    let edits = posts::history(&state.app, &ctx, &pid).await?;
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
    let post = posts::mark_helpful_as(&state.app, &ctx, &pid, on).await?;
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
) -> ApiResult<Response> {
    let post = posts::accept_as(&state.app, &ctx, &pid, Some(&req.reply)).await?;
    Ok(respond(post, |p| {
        Json(PostView::new(p, &ctx.group.public_id)).into_response()
    }))
}

async fn clear_answer(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let post = posts::accept_as(&state.app, &ctx, &pid, None).await?;
    Ok(respond(post, |p| {
        Json(PostView::new(p, &ctx.group.public_id)).into_response()
    }))
}

async fn set_pin(state: AppState, ctx: GroupCtx, pid: String, pinned: bool) -> ApiResult<Response> {
    let post = posts::pin_as(&state.app, &ctx, &pid, pinned).await?;
    Ok(respond(post, |p| {
        Json(PostView::new(p, &ctx.group.public_id)).into_response()
    }))
}

async fn pin(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    set_pin(state, ctx, pid, true).await
}

async fn unpin(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, pid)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
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
    let report = posts::report(&state.app, &ctx, &pid, &req.reason).await?;
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
    let after = position.map(|p| (p[0], p[1]));
    let posts = posts::scheduled(&state.app, &ctx, after, limit + 1).await?;
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
    posts::search_text(q.q.as_deref())?;
    let (before, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let text = q.q.as_deref();
    match q.scope.as_deref() {
        None | Some("posts") => {
            let posts = posts::search(&state.app, &ctx, text, before, limit + 1).await?;
            let items = posts
                .into_iter()
                .map(|p| (p.id, PostView::new(p, &ctx.group.public_id)))
                .collect();
            Ok(Json(SearchPage::Posts(Page::from_overfetch(items, limit))))
        }
        Some("library") => {
            let found =
                caremesh_app::library::search(&state.app, &ctx, text, before, limit + 1).await?;
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
    posts::queue_access(&auth.user)?;
    let (position, limit) = q.decode_parts(2)?;
    let after = position.map(|p| (p[0], p[1]));
    let items = posts::doctor_queue(&state.app, &auth.user, after, limit + 1).await?;
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
