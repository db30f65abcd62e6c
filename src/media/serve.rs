//! `GET /v1.0/media/{id}?exp=&sig=`: a signed, expiring download, no auth header needed (an
//! `<img src>`, a provider fetching an MMS attachment).
//!
//! Serving rules, the same for every media: `Content-Type` as sniffed at upload,
//! `X-Content-Type-Options: nosniff` always, `Content-Security-Policy: sandbox` (a document
//! opened from here runs no script and has no origin), and `Content-Disposition: attachment`
//! for everything that is not an image, audio or video — SVG and HTML are never inline.
//! One `Range` (`bytes=a-b`, `a-`, `-n`) gets 206 with `Content-Range`; an unsatisfiable one
//! 416. Owns the HTTP door; bytes come from [`super::Storage`].

use super::sign::Variant;
use crate::app::AppState;
use crate::error::{Error, ErrorBody, Path, Query, Result};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Debug, Deserialize, IntoParams)]
pub struct Signed {
    /// Expiry, unix seconds (part of the signed URL).
    pub exp: u64,
    /// Hex HMAC-SHA256 (part of the signed URL).
    pub sig: String,
    /// `thumbnail` for an image's thumbnail.
    pub variant: Option<String>,
}

/// A `Range` that no byte of the object satisfies (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single byte range of an object of `size` bytes: `Ok(None)` for none asked (or several,
/// which are answered whole), `Err` when unsatisfiable.
pub fn parse_range(h: Option<&str>, size: u64) -> std::result::Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 || size == 0 {
            return Err(Unsatisfiable);
        }
        (size.saturating_sub(n), size)
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end =
            if b.is_empty() { size } else { b.parse::<u64>().map_err(|_| Unsatisfiable)?.saturating_add(1).min(size) };
        if start >= size || end <= start {
            return Err(Unsatisfiable);
        }
        (start, end)
    };
    Ok(Some(range))
}

#[utoipa::path(get, path = "/v1.0/media/{id}", tag = "media", params(("id" = Uuid, Path), Signed),
    description = "A signed download (the URL comes from an upload's answer or a message). Supports one `Range`.",
    responses((status = 200, description = "the bytes"), (status = 206, description = "the range asked for"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody, description = "bad or expired signature"),
        (status = 404, body = ErrorBody), (status = 416, description = "range not satisfiable")))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> Result<Response> {
    let variant = match q.variant.as_deref() {
        None | Some("" | "original") => Variant::Original,
        Some("thumbnail") => Variant::Thumbnail,
        Some(_) => return Err(Error::bad_request("variant must be `thumbnail` or absent")),
    };
    state.media.signer.check(id, variant, q.exp, &q.sig)?;
    let r = state.media.records.get(id).await?.ok_or(Error::NotFound("media"))?;
    let (key, ct, size) = match variant {
        Variant::Original => (r.key(), r.content_type.clone(), r.size),
        Variant::Thumbnail if r.thumbnail => {
            // The thumbnail's size is not recorded: no ranges on it (it is small).
            let body = state.media.storage.get(&r.thumb_key(), None).await?;
            return Ok(respond(StatusCode::OK, "image/jpeg", None, None, Body::from_stream(body)));
        }
        Variant::Thumbnail => return Err(Error::NotFound("thumbnail")),
    };
    let disposition = if super::sniff::inline(&ct) {
        None
    } else {
        let name = r.name.clone().unwrap_or_else(|| id.to_string());
        let ascii: String = name.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '_' }).collect();
        Some(format!("attachment; filename=\"{ascii}\""))
    };
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    match parse_range(range, size) {
        Err(Unsatisfiable) => {
            let mut res = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Ok(res)
        }
        Ok(None) => {
            let body = state.media.storage.get(&key, None).await?;
            let mut res = respond(StatusCode::OK, &ct, disposition.as_deref(), Some(size), Body::from_stream(body));
            res.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            Ok(res)
        }
        Ok(Some((a, b))) => {
            let body = state.media.storage.get(&key, Some((a, b))).await?;
            let mut res =
                respond(StatusCode::PARTIAL_CONTENT, &ct, disposition.as_deref(), Some(b - a), Body::from_stream(body));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{}/{size}", b - 1)) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            res.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            Ok(res)
        }
    }
}

fn respond(status: StatusCode, ct: &str, disposition: Option<&str>, len: Option<u64>, body: Body) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'; img-src 'self'; media-src 'self'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    if let Some(d) = disposition.and_then(|d| HeaderValue::from_str(d).ok()) {
        h.insert(header::CONTENT_DISPOSITION, d);
    }
    if let Some(n) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ok(Some((0, 4))));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ok(Some((5, 10))));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some((7, 10))));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ok(Some((8, 10))));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(super::Unsatisfiable));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
    }
}
