//! CORS for the widget's endpoints and files: pages of a website account's
//! `allowed_origins` may call `/v1.0/widget/…`; no other origin gets a CORS header.
//!
//! A preflight (`OPTIONS`) carries no body, so it cannot name the account by the body's
//! `key`: browsers send the key in the query too (`?key=pk_…`; the widget does), and the
//! preflight is answered for that account's origins only. For the request itself the key is
//! read from the query or, failing that, from the JSON body (kept for the handler). A request
//! whose origin the account does not allow is refused here with 403 and no CORS header.
//! The rest of the REST API (`bearer_api`) answers CORS for any origin, without credentials:
//! the widget's JS client pages history and uploads files from the customer's page with its
//! client token, and since every call carries its own bearer token (no cookie is ever sent),
//! a page of another origin can do nothing there that a script holding the token could not.
//! The static files (`/widget.js`, `/widget/…`, `/sdk/…`) are public scripts: any origin may
//! load them (`*`), which module scripts from another origin need.

use crate::app::AppState;
use crate::error::Error;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How long browsers may cache a preflight answer (seconds).
const MAX_AGE: &str = "600";

/// The middleware of the `/v1.0/widget/…` routes.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string);
    let Some(origin) = origin else {
        // No browser: nothing to allow; the handler refuses a missing origin itself.
        return next.run(req).await;
    };
    let (req, key) = match key_of(req, state.config.limits.max_body_bytes).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let allowed = match super::account_by_key(&state, &key).await {
        Ok(a) => a.widget.as_ref().is_some_and(|w| w.allows(&origin)),
        // An unknown key: let the handler answer it (404), with no CORS header.
        Err(_) if req.method() != Method::OPTIONS => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    if !allowed {
        let e = Error::Forbidden(format!(
            "origin {origin} is not allowed for this widget (account widget.allowed_origins)"
        ));
        return e.into_response();
    }
    let mut res = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        r
    } else {
        next.run(req).await
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    res
}

/// The request's public key: `?key=`, else the JSON body's `key` (the body is put back).
async fn key_of(req: Request, limit: usize) -> Result<(Request, String), Error> {
    let from_query = req
        .uri()
        .query()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned()));
    if let Some(k) = from_query {
        return Ok((req, k));
    }
    if req.method() != Method::POST {
        return Ok((req, String::new()));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        Error::PayloadTooLarge(format!("the body is larger than {limit} bytes (limits.max_body_bytes)"))
    })?;
    let key = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_default();
    Ok((Request::from_parts(parts, Body::from(bytes)), key))
}

/// The layer of the widget's static files: `Access-Control-Allow-Origin: *`.
pub async fn public_files(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// CORS of the bearer-token REST API: any origin, no credentials, the `Authorization` header.
pub fn bearer_api() -> tower_http::cors::CorsLayer {
    use axum::http::Method as M;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([M::GET, M::POST, M::PUT, M::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(600))
}
