//! Operations endpoints for hospital IT and their monitoring: liveness, readiness and metrics.
//! They carry no patient data and need no login; put them behind the hospital's network policy
//! if `/metrics` should not be public.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers, every embedded migration is applied and writes work (see
/// `Store::ready`: after a write that did not commit, a probe write decides). Load balancers and
/// orchestrators take the node out of service while this answers 503.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = caremesh_app::node::backend(&state.app);
    match caremesh_app::node::ready(&state.app).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": backend })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "not_ready",
                    "message": "the database is unreachable, not fully migrated or does not take writes",
                    "database": backend,
                })),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    match caremesh_app::node::partner_clocks(&state.app).await {
        Ok(clocks) => {
            let clocks: Vec<(String, i64)> = clocks
                .into_iter()
                .map(|c| (c.partner, c.skew_secs))
                .collect();
            crate::metrics::render_partner_clocks(&mut text, &clocks);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the partner list for the metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
