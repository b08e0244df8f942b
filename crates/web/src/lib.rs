//! The HTTP face of a Caremesh node: the JSON API under `/api/v1`, the operations endpoints, the
//! extractors that check sessions and roles, and the one error type every route answers with.
//!
//! Handlers see only `Arc<dyn Store>`; they never touch SQL. This crate must not depend on the
//! server crate (configuration reaches it as [`WebSettings`]) nor on a storage backend.

pub mod admin;
pub mod auth;
pub mod error;
pub mod extract;
pub mod federation;
pub mod groups;
pub mod library;
pub mod media;
pub mod metrics;
pub mod moderation;
pub mod ops;
pub mod page;
pub mod pages;
pub mod posts;
pub mod qr;
pub mod state;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult};
pub use state::{AppState, WebSettings};

/// The node's complete router, ready to serve.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.max_body_bytes;
    let max_activity = caremesh_app::node::max_activity_bytes(&state.app);
    Router::new()
        .merge(federation::router(max_activity))
        .merge(auth::router())
        .merge(admin::router())
        .merge(ops::router())
        .merge(groups::router())
        .merge(posts::router())
        .merge(media::router())
        .merge(library::router())
        .merge(moderation::router())
        .merge(pages::router(state.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            tracing::info_span!("request", method = %req.method(), route)
        }))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Refuses a request whose declared length is over the limit before reading any of it.
/// Uploads have their own, larger limit (`media.max_file_bytes`), enforced here and again while
/// the upload handler reads the body; so do the pages' forms with a photo (one file and the text).
async fn refuse_oversized(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let upload = media::is_upload(req.method(), req.uri().path());
    let page_upload = pages::is_page_upload(req.method(), req.uri().path());
    let limit = if upload {
        state.settings.max_file_bytes
    } else if page_upload {
        pages::page_upload_limit(&state)
    } else {
        state.settings.max_body_bytes
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        if upload {
            return media::file_too_large(limit).into_response();
        }
        if page_upload {
            return pages::oversized_upload(&state, req).await;
        }
        return ApiError::payload_too_large(limit).into_response();
    }
    next.run(req).await
}

async fn security_headers(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let is_head_or_get = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // HTML pages choose `same-origin` (with `no-referrer` browsers send `Origin: null` on form
    // posts, which the same-origin check must refuse); everything else sends no referrer.
    if !h.contains_key(header::REFERRER_POLICY) {
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if is_api || !is_head_or_get {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
