//! `GET /metrics`: this node's metrics in the Prometheus text format.
//!
//! Protected by `metrics.token` when set (`Authorization: Bearer <token>`); with it empty the
//! endpoint is open, which suits a scraper on a private network only. The token is compared
//! through SHA-256 digests so the comparison time does not depend on how much of it matched.

use crate::app::AppState;
use crate::error::Error;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The exposition format version Prometheus expects for text.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    let want = &state.config.metrics.token;
    if !want.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        if Sha256::digest(given.as_bytes()) != Sha256::digest(want.as_bytes()) {
            return Err(Error::Unauthorized("`GET /metrics` needs `Authorization: Bearer <metrics.token>`".into()));
        }
    }
    state.metrics.sample_hub(crate::metrics::HubSample {
        rooms: state.hub.room_count(),
        subscriptions: state.hub.subscription_count(),
        watchers: state.watchers.count(),
        fanout_drops: state.hub.fanout_drops(),
    });
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], state.metrics.render()).into_response())
}
