//! Logs: tracing with a human or JSON format, request ids, and no secrets.
//!
//! What keeps credentials out of the logs:
//! - The HTTP span ([`http_span`]) records the path, never the full URI: browsers must pass
//!   their client token as `?token=` on the WebSocket URL (they cannot set headers there).
//!   No layer logs request headers, so `Authorization: Bearer <api key>` never reaches a log.
//! - [`no_payloads`] drops TRACE events of the WebSocket library (it prints every frame,
//!   and a `refresh` frame carries a token) and of reqwest's connection internals (they can
//!   print raw bytes of provider calls), whatever `RUST_LOG` asks for.
//! - Errors and warnings in this crate name ids and codes, not request bodies or keys.
//!
//! Every request gets an `x-request-id` (kept if the caller sent one, else a UUID): it is in
//! the span of every log line of that request, echoed in the response, and available to
//! handlers as the `tower_http::request_id::RequestId` extension so outbound provider and
//! webhook calls can forward it.

use axum::extract::MatchedPath;
use axum::http::Request;
use tracing::{Level, Metadata, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The request id header, set by `SetRequestIdLayer` and echoed by `PropagateRequestIdLayer`.
pub const REQUEST_ID: &str = "x-request-id";

tokio::task_local! {
    /// The id of the HTTP request the current task is serving (see [`with_request_id`]).
    static CURRENT_REQUEST: String;
}

/// Runs `f` with `id` as the current request id, so work it starts elsewhere — an outbound
/// provider call, a webhook delivery — can carry the same `X-Request-Id` (a task-local, not a
/// global: it exists only inside this request's future).
pub async fn with_request_id<F: std::future::Future>(id: String, f: F) -> F::Output {
    CURRENT_REQUEST.scope(id, f).await
}

/// The request id of the HTTP request being served by this task, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST.try_with(Clone::clone).ok()
}

/// Targets whose TRACE output contains payload bytes.
const PAYLOAD_TARGETS: &[&str] = &["tungstenite", "tokio_tungstenite", "reqwest::connect"];

fn keep(meta: &Metadata<'_>) -> bool {
    !(*meta.level() == Level::TRACE && PAYLOAD_TARGETS.iter().any(|t| meta.target().starts_with(t)))
}

/// A global filter layer dropping events that would print message payloads; see module docs.
pub fn no_payloads() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(keep as fn(&Metadata<'_>) -> bool)
}

/// Installs the process subscriber: `format` is `human` or `json`, `filter` an EnvFilter
/// directive that `RUST_LOG` overrides. Logs go to stderr.
pub fn init(format: &str, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let registry = tracing_subscriber::registry().with(no_payloads()).with(filter);
    // Colours only for a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    if format == "json" {
        registry.with(fmt.json()).init();
    } else {
        registry.with(fmt).init();
    }
}

/// The span of one HTTP request: method, path *without the query*, matched route, request id.
pub fn http_span<B>(req: &Request<B>) -> Span {
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("");
    let request_id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("http", method = %req.method(), path = req.uri().path(), route, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_never_carries_the_query() {
        let req = Request::builder().uri("/v1.0/ws?token=secret.jwt.value").body(()).unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .with_max_level(Level::TRACE)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .finish();
        tracing::subscriber::with_default(sub, || {
            let _g = http_span(&req).entered();
            tracing::info!("inside");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        assert!(text.contains("/v1.0/ws"), "{text}");
        assert!(!text.contains("secret.jwt.value"), "{text}");
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
