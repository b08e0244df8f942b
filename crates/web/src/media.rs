//! Attachments over HTTP: the upload route (the raw body, within `media.max_file_bytes`) and the
//! download route with its content type and headers. Checking, cleaning (images are re-encoded
//! without their metadata), storing and the group's quota live in [`caremesh_app::media`].

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caremesh_app::media;
use caremesh_app::model::Attachment;
use caremesh_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::groups::GroupCtx;
use crate::state::AppState;

/// The upload route. `lib.rs` lets its bodies be as large as `media.max_file_bytes`.
pub const UPLOAD_ROUTE: &str = "/api/v1/groups/{gid}/attachments";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(UPLOAD_ROUTE, post(upload))
        .route("/api/v1/groups/{gid}/attachments/{aid}", get(download))
}

/// Whether a request is an upload, which has its own body limit.
pub fn is_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/v1/groups/")
            .and_then(|rest| rest.strip_suffix("/attachments"))
            .is_some_and(|gid| !gid.is_empty() && !gid.contains('/'))
}

#[derive(Serialize)]
pub struct AttachmentView {
    pub id: String,
    pub content_type: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
    /// Where members download it.
    pub url: String,
}

impl AttachmentView {
    pub fn new(a: Attachment, group_public_id: &str) -> Self {
        Self {
            url: format!(
                "/api/v1/groups/{group_public_id}/attachments/{}",
                a.public_id
            ),
            id: a.public_id,
            content_type: a.content_type,
            file_name: a.file_name,
            size_bytes: a.size_bytes,
            width: a.width,
            height: a.height,
            created_at: a.created_at,
        }
    }
}

/// A file over `media.max_file_bytes` (413 `file_too_large`), as the upload route and the pages'
/// photo fields refuse it.
pub fn file_too_large(limit: usize) -> ApiError {
    media::file_too_large(limit).into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name as the uploader knows it (shown to members when they download it).
    name: Option<String>,
}

/// Uploads one file as the raw request body (`Content-Type: image/jpeg`, `image/png`,
/// `image/webp` or `application/pdf`). Answers `201` with the attachment; its id then goes into a
/// post's `attachments` or a library item.
async fn upload(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    // Only members may send a body worth reading.
    ctx.read()?;
    let limit = state.app.settings.max_file_bytes;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !declared.as_deref().is_some_and(media::accepts_content_type) {
        return Err(media::unsupported().into());
    }
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| file_too_large(limit))?;
    let attachment = media::save_upload(&state.app, &ctx, bytes.into(), q.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(AttachmentView::new(attachment, &ctx.group.public_id)),
    ))
}

/// `filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266), so Chinese names survive.
fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn download(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, aid)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let (a, bytes) = media::download(&state.app, &ctx, &aid).await?;
    let (content_type, disposition) = serving(&a.content_type);
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(disposition, &a.file_name))
            .map_err(ApiError::internal)?,
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

/// How a stored file is served: the images the node cleaned, inline under their own fixed type;
/// PDFs downloaded, never shown inline (browser PDF viewers run scripts); anything else, whatever
/// its record says, downloaded as bytes.
fn serving(stored_type: &str) -> (&'static str, &'static str) {
    match stored_type {
        "image/jpeg" => ("image/jpeg", "inline"),
        "image/png" => ("image/png", "inline"),
        "image/webp" => ("image/webp", "inline"),
        "application/pdf" => ("application/pdf", "attachment"),
        _ => ("application/octet-stream", "attachment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cleaned_images_are_shown_inline() {
        assert_eq!(serving("image/png"), ("image/png", "inline"));
        assert_eq!(
            serving("application/pdf"),
            ("application/pdf", "attachment")
        );
        for other in ["text/html", "image/svg+xml", "application/xhtml+xml", ""] {
            assert_eq!(serving(other), ("application/octet-stream", "attachment"));
        }
    }

    #[test]
    fn upload_paths_are_recognised() {
        let post = axum::http::Method::POST;
        assert!(is_upload(&post, "/api/v1/groups/abc/attachments"));
        assert!(!is_upload(&post, "/api/v1/groups/abc/attachments/x"));
        assert!(!is_upload(&post, "/api/v1/groups//attachments"));
        assert!(!is_upload(&post, "/api/v1/groups/a/b/attachments"));
        assert!(!is_upload(
            &axum::http::Method::GET,
            "/api/v1/groups/abc/attachments"
        ));
    }

    #[test]
    fn download_names_survive_in_both_forms() {
        assert_eq!(
            content_disposition("inline", "化验 a.png"),
            "inline; filename=\"__ a.png\"; filename*=UTF-8''%E5%8C%96%E9%AA%8C%20a.png"
        );
    }
}
