//! `/v1.0/widget/…`: the website chat widget's own doors, called by browsers on the customer's
//! site with a public key (`pk_…`) instead of an API key.
//!
//! - `POST /v1.0/widget/sessions` (`session.rs`): a visitor arrives (or comes back). It answers
//!   a refreshable visitor token, the visitor's contact, a client token for the visitor's
//!   conversation (if there is one yet), the branding and whether an agent is online.
//!   Creating a session creates **no conversation**.
//! - `POST /v1.0/widget/messages` (`room.rs`): the visitor's first message — or any message
//!   when the conversation is resolved or closed — finds or opens the visitor's room by the
//!   account's matching rules, posts through `conversations::post` and answers a client token
//!   that now includes the room. Later messages go over the WebSocket through the JS client.
//!
//! What every request here shares: the key names a `web` account, the `Origin` must be one of
//! its `allowed_origins` (CORS answers only those: `cors.rs`), and each client address is
//! rate-limited (`limits.widget_rate_per_sec`), since there is no API key to limit by.
//! Not here: the protocol (the JS client in `clients/js/`, served at `/sdk/`) and the panel
//! (`static/widget/`, served at `/widget.js` and `/widget/`).

pub mod cors;
pub mod room;
pub mod session;
pub mod settings;

use crate::app::AppState;
use crate::auth::{ClientClaims, TokenError};
use crate::error::{Error, Result};
use crate::model::{Account, Address, AddressType, ProviderKind, WidgetSettings};
use axum::http::HeaderMap;
use std::net::SocketAddr;
use uuid::Uuid;

/// The widget's API routes (under `/v1.0`), behind the CORS guard.
pub fn routes(state: &AppState) -> axum::Router<AppState> {
    use axum::routing::post;
    let preflight = || async { axum::http::StatusCode::NO_CONTENT };
    axum::Router::new()
        .route("/widget/sessions", post(session::create).options(preflight))
        .route("/widget/messages", post(room::post).options(preflight))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), cors::guard))
}

/// The widget's files: `/widget.js` (the loader of the script tag) and `/widget/…` (its
/// modules), each with the content type of its extension and `Access-Control-Allow-Origin: *`
/// (so does `/sdk/…`, the JS client it imports; see `api::router`).
pub fn files(static_dir: &str) -> axum::Router<AppState> {
    use tower_http::services::{ServeDir, ServeFile};
    axum::Router::new()
        .route_service("/widget.js", ServeFile::new(format!("{static_dir}/widget.js")))
        .nest_service("/widget", ServeDir::new(format!("{static_dir}/widget")))
        .layer(axum::middleware::from_fn(cors::public_files))
}

/// The `role` claim of visitor tokens: they open sessions, never rooms (no conversations).
pub const ROLE_VISITOR: &str = "visitor";
/// How long a visitor token lasts; every session answers a fresh one.
pub const VISITOR_TTL_SECS: u64 = 180 * 24 * 3600;

/// The website account a public key names, or 404 `account not found` (an unknown, deleted
/// or non-`web` account, or a key that is no longer its key: all look the same).
pub async fn account_by_key(state: &AppState, key: &str) -> Result<Account> {
    let id = WidgetSettings::key_account(key.trim()).ok_or(Error::NotFound("account"))?;
    let a = state.accounts.get(state.channel_store.as_ref(), id).await?.ok_or(Error::NotFound("account"))?;
    let ok = a.provider == ProviderKind::Web
        && a.widget
            .as_ref()
            .is_some_and(|w| crate::auth::constant_time_eq(w.public_key.as_bytes(), key.trim().as_bytes()));
    if ok { Ok(a) } else { Err(Error::NotFound("account")) }
}

/// The request's `Origin`, when the account allows it; else 403 saying which origin was refused.
pub fn check_origin(account: &Account, headers: &HeaderMap) -> Result<String> {
    let origin = headers.get(axum::http::header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("");
    if origin.is_empty() {
        return Err(Error::Forbidden("the widget is called from web pages: the request needs an Origin header".into()));
    }
    if account.widget.as_ref().is_some_and(|w| w.allows(origin)) {
        return Ok(origin.to_string());
    }
    Err(Error::Forbidden(format!("origin {origin} is not allowed for this widget (account widget.allowed_origins)")))
}

/// Takes one request from `peer`'s allowance (429 with `Retry-After` when spent).
pub fn check_rate(state: &AppState, peer: &SocketAddr) -> Result<()> {
    if let Err(e) = state.limits.widget.check(&peer.ip().to_string()) {
        state.metrics.rate_limited("widget");
        return Err(e);
    }
    Ok(())
}

/// The account, after the origin and rate checks every widget request starts with.
pub async fn admit(state: &AppState, key: &str, headers: &HeaderMap, peer: &SocketAddr) -> Result<Account> {
    check_rate(state, peer)?;
    let account = account_by_key(state, key).await?;
    check_origin(&account, headers)?;
    Ok(account)
}

/// The visitor a visitor token names on `account`'s tenant: `Ok(None)` when it has expired
/// (the visitor starts over), 401 when it is not one of ours.
pub fn visitor(state: &AppState, account: &Account, token: &str) -> Result<Option<ClientClaims>> {
    match state.tokens.verify(token) {
        Ok(c) if c.role.as_deref() == Some(ROLE_VISITOR) && c.tid == account.tenant_id => Ok(Some(c)),
        Ok(_) | Err(TokenError::Invalid) => {
            Err(Error::Unauthorized("visitor_token is not a visitor token of this site".into()))
        }
        Err(TokenError::Expired) => Ok(None),
    }
}

/// The visitor's webchat address: its identity is the client token's `sub`.
pub fn address(identity: &str, name: &str) -> Address {
    Address { kind: AddressType::Webchat, target: identity.to_string(), name: name.to_string() }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    chrono::Utc::now().timestamp().max(0) as u64
}

/// A client token for `identity` scoped to `conversations` (none yet: it still connects).
pub fn client_token(state: &AppState, tenant: Uuid, identity: &str, conversations: Vec<Uuid>) -> (String, u64) {
    let now = unix_now();
    let exp = now + state.config.auth.token_ttl_secs;
    let claims = ClientClaims {
        sub: identity.to_string(),
        tid: tenant,
        convs: Some(conversations),
        iat: now,
        exp,
        role: None,
        sid: None,
    };
    (state.tokens.sign(&claims), exp)
}
