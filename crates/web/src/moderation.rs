//! Moderation: the queue of reported posts and the moderation log ([`caremesh_app::moderation`]).
//! Removing posts and banning members live with posts and members; every such action is written
//! to the log by the store in the same transaction as the action itself.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use caremesh_app::model::{ModerationEntry, Report};
use caremesh_app::moderation;
use caremesh_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::groups::GroupCtx;
use crate::page::{Page, PageQuery};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups/{gid}/reports", get(list_reports))
        .route(
            "/api/v1/groups/{gid}/reports/{rid}/dismiss",
            post(dismiss_report),
        )
        .route("/api/v1/groups/{gid}/moderation-log", get(moderation_log))
}

#[derive(Serialize)]
pub struct ReportView {
    pub id: i64,
    pub post: String,
    /// The reported text as it is now (empty once removed).
    pub post_body: String,
    pub reason: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// `removed` or `dismissed` once handled.
    pub resolution: Option<String>,
}

impl ReportView {
    pub fn new(r: Report) -> Self {
        Self {
            id: r.id,
            post: r.post_public_id,
            post_body: r.post_body,
            reason: r.reason,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolution: r.resolution,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportsQuery {
    /// `open` (default) or `all`.
    state: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// Reports, oldest first: the moderators' queue.
async fn list_reports(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<Page<ReportView>>> {
    ctx.moderate()?;
    let open_only = match q.state.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "state must be open or all",
            ));
        }
    };
    let (after, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let reports = moderation::reports(&state.app, &ctx, open_only, after, limit + 1).await?;
    let items = reports
        .into_iter()
        .map(|r| (r.id, ReportView::new(r)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

async fn dismiss_report(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, rid)): ApiPath<(String, i64)>,
) -> ApiResult<Json<ReportView>> {
    let report = moderation::dismiss_report(&state.app, &ctx, rid).await?;
    Ok(Json(ReportView::new(report)))
}

#[derive(Serialize)]
struct EntryView {
    id: i64,
    action: String,
    moderator: Option<String>,
    target_member: Option<i64>,
    target_name: Option<String>,
    target_post: Option<String>,
    detail: Option<String>,
    created_at: Timestamp,
}

impl EntryView {
    fn new(e: ModerationEntry) -> Self {
        Self {
            id: e.id,
            action: e.action,
            moderator: e.moderator_name,
            target_member: e.target_member_id,
            target_name: e.target_name,
            target_post: e.target_post_public_id,
            detail: e.detail,
            created_at: e.created_at,
        }
    }
}

/// The moderation log, newest first: for the group's moderators and the hospital's admins.
async fn moderation_log(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<EntryView>>> {
    ctx.moderate()?;
    let (before, limit) = q.decode()?;
    let entries = moderation::log(&state.app, &ctx, before, limit + 1).await?;
    let items = entries
        .into_iter()
        .map(|e| (e.id, EntryView::new(e)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}
