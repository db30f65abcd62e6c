//! The layers every HTTP request passes through for operations: request id, trace span,
//! latency histogram.
//!
//! Outermost first: `SetRequestId` (so the span can show the id) → `Trace` (span from
//! [`crate::logging::http_span`], which leaves the query string out) → `PropagateRequestId`
//! (echo the id in the response) → latency recording → the route.

use crate::app::AppState;
use crate::logging::{REQUEST_ID, http_span};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Wraps `router` (all its routes and fallbacks) in the operations layers.
pub fn layer(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let header = HeaderName::from_static(REQUEST_ID);
    router
        .layer(from_fn_with_state(state.clone(), record_latency))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(http_span))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}

/// Records `switchboard_http_request_duration_seconds{method, route, status}`. The route is
/// the matched pattern (`/v1.0/conversations/{id}`), never the concrete path, so ids do not
/// explode the label set; requests no route matched are `fallback`.
async fn record_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("fallback", MatchedPath::as_str).to_owned();
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let res = crate::logging::with_request_id(id, next.run(req)).await;
    state.metrics.http_request(method.as_str(), &route, res.status().as_u16(), start.elapsed());
    res
}
