//! Agent sign-in: `POST /v1.0/invites/accept` (set the password through the one-time invite),
//! `POST /v1.0/sessions` (email and password), `POST /v1.0/sessions/refresh` (rotate) and
//! `DELETE /v1.0/sessions` (sign out). None of them takes an API key.
//!
//! Sign-in is rate-limited per client address and per email before any password is checked,
//! and answers an unknown email exactly like a wrong password (401 `invalid_credentials`, after
//! checking a dummy hash). Passwords never enter a log line: they live in the request body,
//! which nothing logs, and are handed straight to the hashing task. The rules are
//! `crate::agents::sessions`; this file translates shapes.

use crate::agents::accounts::{self, AgentView};
use crate::agents::sessions::{self, Issued};
use crate::app::AppState;
use crate::auth::hash_api_key;
use crate::error::{Error, ErrorBody, Json, Result};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use utoipa::ToSchema;
use uuid::Uuid;

/// The most accounts one email may open across tenants in one sign-in.
const MAX_CANDIDATES: usize = 5;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    /// The token from the invite link (`/#invite=<token>`).
    pub token: String,
    /// 10 to 256 characters.
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
    /// Which tenant, when the email has accounts in several.
    pub tenant_id: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// A signed-in session: an access token for REST and the WebSocket, and the refresh token
/// that gets the next one.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// An agent token (role `agent`: its own and unassigned conversations) or, for an admin, an
    /// operator token with role `admin` (every conversation of the tenant).
    pub token: String,
    pub expires_at: DateTime<Utc>,
    /// One use: `POST /v1.0/sessions/refresh` answers a new pair and retires it.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub tenant_id: Uuid,
    pub agent: AgentView,
}

// Hand-written so no password or token can ever reach a log through `{:?}`.
impl std::fmt::Debug for AcceptInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptInvite(..)")
    }
}
impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn(..)")
    }
}
impl std::fmt::Debug for RefreshBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshBody(..)")
    }
}

fn limited(state: &AppState, e: Error) -> Error {
    state.metrics.rate_limited("login");
    e
}

async fn answer(state: &AppState, a: &accounts::Account, i: Issued) -> Result<SessionResponse> {
    let online = state.agents.available(a.tenant_id).await?.contains(&a.identity);
    Ok(SessionResponse {
        token: i.token,
        expires_at: i.expires_at,
        refresh_token: i.refresh_token,
        refresh_expires_at: i.refresh_expires_at,
        tenant_id: a.tenant_id,
        agent: a.view(online, None),
    })
}

fn invalid_credentials() -> Error {
    Error::Denied { code: "invalid_credentials", message: "wrong email or password".into() }
}

#[utoipa::path(post, path = "/v1.0/invites/accept", tag = "sessions", request_body = AcceptInvite,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody),
        (status = 410, description = "`invite_invalid`: unknown, used, expired or replaced", body = ErrorBody),
        (status = 422, description = "`weak_password`", body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(b): Json<AcceptInvite>,
) -> Result<(StatusCode, Json<SessionResponse>)> {
    state.limits.login_address.check(&peer.ip().to_string()).map_err(|e| limited(&state, e))?;
    sessions::check_password(&b.password)?;
    if b.token.len() > 256 {
        return Err(Error::Gone {
            code: "invite_invalid",
            message: "this invite link is unknown, used or expired".into(),
        });
    }
    // The invite first, so a made-up token costs no hashing.
    let mut a = accounts::take_invite(&*state.records, &b.token).await?;
    a.password_hash = Some(sessions::hash_password(b.password).await?);
    accounts::save(&*state.records, &a).await?;
    // A new password ends every older session.
    sessions::end_all(&state, a.tenant_id, a.id).await?;
    let issued = sessions::start(&state, &a).await?;
    Ok((StatusCode::CREATED, Json(answer(&state, &a, issued).await?)))
}

#[utoipa::path(post, path = "/v1.0/sessions", tag = "sessions", request_body = SignIn,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: wrong email or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with `Retry-After`", body = ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(b): Json<SignIn>,
) -> Result<(StatusCode, Json<SessionResponse>)> {
    state.limits.login_address.check(&peer.ip().to_string()).map_err(|e| limited(&state, e))?;
    let email = b.email.trim().to_lowercase();
    if email.is_empty() || email.len() > 254 || b.password.is_empty() || b.password.len() > 4 * sessions::MAX_PASSWORD {
        return Err(invalid_credentials());
    }
    state.limits.login_email.check(&hash_api_key(&email)).map_err(|e| limited(&state, e))?;
    let mut candidates = accounts::by_email(&*state.records, &email).await?;
    candidates.retain(|(t, _)| b.tenant_id.is_none_or(|want| want == *t));
    candidates.truncate(MAX_CANDIDATES);
    let mut accounts_found = Vec::new();
    for (tenant, id) in candidates {
        if let Some(a) = accounts::get(&*state.records, tenant, id).await? {
            accounts_found.push(a);
        }
    }
    if accounts_found.iter().all(|a| a.password_hash.is_none()) {
        // Unknown email, or no password set yet: the same work and answer as a wrong password.
        sessions::verify_password(b.password, None).await;
        return Err(invalid_credentials());
    }
    for a in accounts_found.into_iter().filter(|a| a.password_hash.is_some()) {
        if sessions::verify_password(b.password.clone(), a.password_hash.clone()).await {
            let issued = sessions::start(&state, &a).await?;
            return Ok((StatusCode::CREATED, Json(answer(&state, &a, issued).await?)));
        }
    }
    Err(invalid_credentials())
}

#[utoipa::path(post, path = "/v1.0/sessions/refresh", tag = "sessions", request_body = RefreshBody,
    responses((status = 201, body = SessionResponse), (status = 400, body = ErrorBody),
        (status = 401, description = "`invalid_refresh`: unknown, used (the session is then ended), expired or signed out", body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    Json(b): Json<RefreshBody>,
) -> Result<(StatusCode, Json<SessionResponse>)> {
    let (a, issued) = sessions::refresh(&state, b.refresh_token.trim()).await?;
    Ok((StatusCode::CREATED, Json(answer(&state, &a, issued).await?)))
}

#[utoipa::path(delete, path = "/v1.0/sessions", tag = "sessions", request_body(content = RefreshBody, description = "or no body and `Authorization: Bearer <refresh token>`"),
    responses((status = 204, description = "signed out: the refresh token and the session's access tokens no longer work"),
        (status = 400, body = ErrorBody), (status = 401, description = "`invalid_refresh`", body = ErrorBody)))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let token = match from_header.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None if body.iter().all(u8::is_ascii_whitespace) => {
            return Err(Error::bad_request("give `{\"refresh_token\": …}` or `Authorization: Bearer <refresh token>`"));
        }
        None => {
            let b: RefreshBody = serde_json::from_slice(&body)
                .map_err(|e| Error::BadRequest { code: "bad_json", message: format!("body: {e}") })?;
            b.refresh_token
        }
    };
    sessions::sign_out(&state, token.trim()).await?;
    Ok(StatusCode::NO_CONTENT)
}
