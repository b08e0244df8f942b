//! A group's library: named folders into which doctors and moderators save posts and files, so
//! that education material stays findable after the feed has moved on. Members read it. The
//! rules live in [`caremesh_app::library`].

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use caremesh_app::library::{self, ItemSource};
use caremesh_app::model::{LibraryFolder, LibraryItem};
use caremesh_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::groups::GroupCtx;
use crate::groups::respond;
use crate::media::AttachmentView;
use crate::page::Page;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/groups/{gid}/library/folders",
            get(list_folders).post(create_folder),
        )
        .route(
            "/api/v1/groups/{gid}/library/folders/{fid}",
            delete(delete_folder),
        )
        .route(
            "/api/v1/groups/{gid}/library/items",
            get(list_items).post(add_item),
        )
        .route(
            "/api/v1/groups/{gid}/library/items/{iid}",
            delete(remove_item),
        )
}

#[derive(Serialize)]
struct FolderView {
    id: i64,
    name: String,
    item_count: u32,
    created_at: Timestamp,
}

impl FolderView {
    fn new(f: LibraryFolder) -> Self {
        Self {
            id: f.id,
            name: f.name,
            item_count: f.item_count,
            created_at: f.created_at,
        }
    }
}

#[derive(Serialize)]
pub struct LibraryItemView {
    pub id: i64,
    pub folder: i64,
    pub folder_name: String,
    pub title: String,
    /// The saved post's id, or
    pub post: Option<String>,
    /// the saved file.
    pub attachment: Option<AttachmentView>,
    pub added_at: Timestamp,
}

impl LibraryItemView {
    pub fn new(i: LibraryItem, group_public_id: &str) -> Self {
        Self {
            id: i.id,
            folder: i.folder_id,
            folder_name: i.folder_name,
            title: i.title,
            post: i.post_public_id,
            attachment: i
                .attachment
                .map(|a| AttachmentView::new(a, group_public_id)),
            added_at: i.added_at,
        }
    }
}

/// Folders, by name. A library holds few folders, so this list is not paged.
async fn list_folders(
    State(state): State<AppState>,
    ctx: GroupCtx,
) -> ApiResult<Json<Page<FolderView>>> {
    let folders = library::folders(&state.app, &ctx).await?;
    Ok(Json(Page {
        items: folders.into_iter().map(FolderView::new).collect(),
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateFolder {
    name: String,
}

async fn create_folder(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiJson(req): ApiJson<CreateFolder>,
) -> ApiResult<Response> {
    let folder = library::create_folder(&state.app, &ctx, &req.name).await?;
    Ok(respond(folder, |f| {
        (StatusCode::CREATED, Json(FolderView::new(f))).into_response()
    }))
}

async fn delete_folder(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, fid)): ApiPath<(String, i64)>,
) -> ApiResult<Response> {
    let done = library::delete_folder(&state.app, &ctx, fid).await?;
    Ok(respond(done, |()| StatusCode::NO_CONTENT.into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsQuery {
    folder: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_items(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<ItemsQuery>,
) -> ApiResult<Json<Page<LibraryItemView>>> {
    ctx.read()?;
    let folder =
        match q.folder.as_deref() {
            None => None,
            Some(f) => Some(f.parse::<i64>().map_err(|_| {
                ApiError::bad_request("invalid_query", "folder must be a folder id")
            })?),
        };
    let (before, limit) = crate::page::PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .decode()?;
    let items = library::items(&state.app, &ctx, folder, before, limit + 1).await?;
    let items = items
        .into_iter()
        .map(|i| (i.id, LibraryItemView::new(i, &ctx.group.public_id)))
        .collect();
    Ok(Json(Page::from_overfetch(items, limit)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddItem {
    folder: i64,
    /// A post's id, or
    post: Option<String>,
    /// an attachment's id: exactly one of the two.
    attachment: Option<String>,
    /// Defaults to the post's title (or the start of its text) or the file's name.
    title: Option<String>,
}

async fn add_item(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiJson(req): ApiJson<AddItem>,
) -> ApiResult<Response> {
    ctx.keep_library()?;
    let source = match (req.post, req.attachment) {
        (Some(p), None) => ItemSource::Post(p),
        (None, Some(a)) => ItemSource::Attachment(a),
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "give exactly one of post and attachment",
            ));
        }
    };
    let item = library::add_item(&state.app, &ctx, req.folder, source, req.title).await?;
    Ok(respond(item, |i| {
        (
            StatusCode::CREATED,
            Json(LibraryItemView::new(i, &ctx.group.public_id)),
        )
            .into_response()
    }))
}

async fn remove_item(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, iid)): ApiPath<(String, i64)>,
) -> ApiResult<Response> {
    let done = library::remove_item(&state.app, &ctx, iid).await?;
    Ok(respond(done, |()| StatusCode::NO_CONTENT.into_response()))
}
