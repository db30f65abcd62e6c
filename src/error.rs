//! One error type for the whole service.
//!
//! Every failure a caller can cause maps to a 4xx with a stable machine-readable `code`; only
//! genuine faults (a backend down) are 5xx. The same codes travel in WebSocket `error` frames.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use utoipa::ToSchema;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The underlying failure behind an `Unavailable` or `Internal` error, kept for logs
/// (shared, so `Error` stays `Clone`).
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Malformed JSON, missing or mistyped fields, bad query parameters.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    /// A 401 with its own code, e.g. `invalid_credentials` (sign-in) or `invalid_refresh`.
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// A 410 with its own code, e.g. `invite_invalid`: the thing existed once and is gone.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("{0}")]
    Forbidden(String),
    /// Unknown resource, or one that belongs to another tenant (indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path exists, the method does not (the `Allow` header lists those that do).
    #[error("method not allowed on this path; see the Allow header")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// A 409 with its own code, e.g. `closed`: the resource's state refuses the request.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: an upload of a type the hub does not take (`crate::media::sniff`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Well-formed but unacceptable values.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A concurrency limit (not a rate): 429 without `Retry-After`, e.g. `too_many_connections`.
    #[error("{message}")]
    TooMany { code: &'static str, message: String },
    /// A backend (Redis) cannot take writes right now; the caller may retry.
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<Source>,
    },
    #[error("internal error: {message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Source>,
    },
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest { code: "bad_request", message: message.into() }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Error::Unprocessable { code, message: message.into() }
    }

    /// 409 with `code`: the resource's state refuses the request (e.g. `closed`).
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused { code, message: message.into() }
    }

    /// 503 `unavailable`: a backend cannot serve right now; the caller may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::Unavailable { message: message.into(), source: None }
    }

    /// 503 `unavailable` caused by `source` (`message` says what was being done).
    pub fn unavailable_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Unavailable { message: message.into(), source: Some(Arc::new(source)) }
    }

    /// 500 `internal`: a fault of this service.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into(), source: None }
    }

    /// 500 `internal` caused by `source` (`message` says what was being done).
    pub fn internal_from(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Internal { message: message.into(), source: Some(Arc::new(source)) }
    }

    /// The text clients see (HTTP body `message`, WebSocket `error` frames): this error and, if
    /// it has one, its direct cause, `"redis: connection refused"`. Deeper causes stay in logs.
    pub fn message(&self) -> String {
        match std::error::Error::source(self) {
            Some(cause) => format!("{self}: {cause}"),
            None => self.to_string(),
        }
    }

    /// This error and every cause under it, `"a: b: c"`, for logs.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) | Error::Denied { .. } => StatusCode::UNAUTHORIZED,
            Error::Gone { .. } => StatusCode::GONE,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict(_) | Error::Refused { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::RateLimited { .. } | Error::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable code for clients to branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest { code, .. }
            | Error::Unprocessable { code, .. }
            | Error::TooMany { code, .. }
            | Error::Refused { code, .. }
            | Error::Denied { code, .. }
            | Error::Gone { code, .. } => code,
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::NotFound(_) => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::Conflict(_) => "conflict",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::UnsupportedMediaType(_) => "unsupported_media_type",
            Error::RateLimited { .. } => "rate_limited",
            Error::Unavailable { .. } => "unavailable",
            Error::Internal { .. } => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code: self.code().to_string(), message: self.message() } }
    }
}

/// An error and its causes, displayed as `"a: b: c"`; see [`Error::chain`].
#[derive(Debug)]
pub struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// `{"error":{"code":"...","message":"..."}}`
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        // The whole cause chain goes to the log; the body keeps to `message()`. A 503 with a
        // cause is a backend failing; one without is a refusal by design (a node at its
        // connection limit, a concurrent update, a Redis deadline, all counted in metrics), kept
        // at debug so a crowd at the limit does not flood the log.
        match &self {
            Error::Internal { .. } => tracing::error!(error = %self.chain(), "internal error"),
            Error::Unavailable { source: Some(_), .. } => tracing::warn!(error = %self.chain(), "unavailable"),
            Error::Unavailable { source: None, .. } => tracing::debug!(error = %self.chain(), "unavailable"),
            _ => {}
        }
        let mut res = (self.status(), axum::Json(self.body())).into_response();
        if let Error::RateLimited { retry_after_secs } = self {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        res
    }
}

/// Router middleware: axum answers a wrong method with an empty 405; give it the JSON error
/// body, keeping its `Allow` header.
pub async fn json_405(res: Response) -> Response {
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let fresh = Error::MethodNotAllowed.into_response();
    parts.headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, fresh.into_body())
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonSyntaxError(e) => Error::BadRequest { code: "bad_json", message: e.body_text() },
            JsonRejection::JsonDataError(e) => Error::BadRequest { code: "invalid_fields", message: e.body_text() },
            JsonRejection::MissingJsonContentType(_) => Error::BadRequest {
                code: "bad_content_type",
                message: "expected `Content-Type: application/json`".into(),
            },
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Error::PayloadTooLarge("request body is too large".into())
            }
            other => Error::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest { code: "invalid_query", message: r.body_text() }
    }
}

impl From<PathRejection> for Error {
    fn from(_: PathRejection) -> Self {
        // A malformed id can name no resource.
        Error::NotFound("resource")
    }
}

/// A JSON request body, as `axum::Json` reads it (content type, body limit, serde), but only
/// a JSON *object*: serde would otherwise fill a struct from a sequence (`["n","d",{}]` as
/// `{"name":"n","detail":"d","metadata":{}}`), a shape no endpoint documents. Every rejection
/// is our JSON error body.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self> {
        if !json_content_type(req.headers()) {
            return Err(Error::BadRequest {
                code: "bad_content_type",
                message: "expected `Content-Type: application/json`".into(),
            });
        }
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(JsonRejection::from)?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|&b| b != b'{') {
            return Err(Error::BadRequest {
                code: "invalid_fields",
                message: "the request body must be a JSON object".into(),
            });
        }
        Ok(Json(axum::Json::<T>::from_bytes(&bytes)?.0))
    }
}

/// `application/json` or any `application/*+json`, as `axum::Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(Ok(raw)) = headers.get(axum::http::header::CONTENT_TYPE).map(|v| v.to_str()) else { return false };
    raw.parse::<mime::Mime>()
        .is_ok_and(|m| m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query` with our error body.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` with our error body.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_for_logs_and_the_body_is_unchanged() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::internal_from("corrupt record in redis", io);
        let source = std::error::Error::source(&e).expect("the io::Error is kept as the source");
        assert_eq!(source.to_string(), "disk on fire");
        assert_eq!(e.chain().to_string(), "internal error: corrupt record in redis: disk on fire");
        // Clients see what they saw when the cause was formatted into the message.
        assert_eq!(e.body().error.message, "internal error: corrupt record in redis: disk on fire");
        assert_eq!((e.status().as_u16(), e.code()), (500, "internal"));
    }

    #[test]
    fn every_level_of_a_nested_cause_is_in_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("read config")]
        struct Outer(#[source] std::io::Error);
        let e = Error::unavailable_from("redis", Outer(std::io::Error::other("connection refused")));
        assert_eq!(e.chain().to_string(), "redis: read config: connection refused");
        assert_eq!(e.message(), "redis: read config", "only the direct cause reaches clients");
        assert_eq!(e.status().as_u16(), 503);
    }

    #[test]
    fn errors_without_a_cause_display_as_before() {
        assert_eq!(Error::internal("no outcome").chain().to_string(), "internal error: no outcome");
        assert_eq!(Error::unavailable("retry").message(), "retry");
        assert_eq!(Error::NotFound("conversation").message(), "conversation not found");
    }
}
