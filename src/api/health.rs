//! Liveness and readiness probes.

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({"status": "ok"}))
}

/// The node can take traffic: its store answers and it is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Value>) {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "shutting_down"})));
    }
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "node": state.node_id, "rooms": state.hub.room_count()})),
        ),
        Err(e) => {
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "store_unavailable", "error": e.message()})))
        }
    }
}
