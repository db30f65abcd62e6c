//! `POST /v1.0/tokens`: mint a client token so a browser can open the WebSocket without an API key.

use crate::app::AppState;
use crate::auth::{ClientClaims, TenantCtx};
use crate::conversations;
use crate::error::{Error, ErrorBody, Json, Result};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The holder's identity: the `target` of its `webchat` participant address.
    pub identity: String,
    /// Conversations the holder may join; it must be a webchat participant of each.
    #[serde(default)]
    pub conversation_ids: Vec<Uuid>,
    /// Operator token: any conversation of the tenant (instead of `conversation_ids`).
    #[serde(default)]
    pub all_conversations: bool,
    /// Lifetime in seconds (default `auth.token_ttl_secs`, at most `auth.token_max_ttl_secs`).
    /// A whole number; JSON does not tell `60` from `60.0`, so neither does the server.
    #[serde(default, deserialize_with = "whole_seconds")]
    pub ttl: Option<u64>,
    /// `agent`: an agent token for `identity`, acting (WebSocket) and reading (REST) on the
    /// conversations assigned to it and unassigned ones. Takes no conversation scope.
    pub role: Option<String>,
}

/// `ttl` as a whole number of seconds, written `60` or `60.0`; `1.5` or `-1` are refused.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    crate::model::whole_number(&n)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("ttl must be a whole number of seconds, not {n}")))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub identity: String,
    pub tenant_id: Uuid,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(post, path = "/v1.0/tokens", tag = "tokens", request_body = TokenRequest,
    responses((status = 201, body = TokenResponse), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn mint(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Json(body): Json<TokenRequest>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let auth = &state.config.auth;
    let identity = body.identity.trim().to_string();
    if identity.is_empty() {
        return Err(Error::invalid("invalid_identity", "identity must not be empty"));
    }
    conversations::check_name(&state, "identity", &identity)?;
    let ttl = body.ttl.unwrap_or(auth.token_ttl_secs);
    if ttl == 0 || ttl > auth.token_max_ttl_secs {
        return Err(Error::invalid(
            "invalid_ttl",
            format!("ttl must be between 1 and {} seconds", auth.token_max_ttl_secs),
        ));
    }
    let role = match body.role.as_deref() {
        None => None,
        Some(crate::auth::ROLE_AGENT) if !body.all_conversations && body.conversation_ids.is_empty() => {
            Some(crate::auth::ROLE_AGENT.to_string())
        }
        Some(crate::auth::ROLE_AGENT) => {
            return Err(Error::invalid(
                "invalid_scope",
                "an agent token is scoped by assignment: give no conversations",
            ));
        }
        Some(_) => return Err(Error::invalid("invalid_role", "role must be `agent` (or absent)")),
    };
    let convs = match (body.all_conversations || role.is_some(), body.conversation_ids.is_empty()) {
        (true, true) => None,
        (false, false) => {
            if body.conversation_ids.len() > state.config.ws.max_subscriptions {
                return Err(Error::invalid(
                    "too_many_conversations",
                    format!("at most {} conversations per token", state.config.ws.max_subscriptions),
                ));
            }
            for &c in &body.conversation_ids {
                conversations::get(&state, t.id, c).await?;
                if conversations::webchat_participant(&state, c, &identity).await?.is_none() {
                    return Err(Error::invalid(
                        "not_participant",
                        format!("`{identity}` is not a webchat participant of conversation {c}"),
                    ));
                }
            }
            Some(body.conversation_ids)
        }
        _ => return Err(Error::invalid("invalid_scope", "give either conversation_ids or all_conversations = true")),
    };
    let now = chrono::Utc::now().timestamp() as u64;
    let claims = ClientClaims { sub: identity.clone(), tid: t.id, convs, iat: now, exp: now + ttl, role, sid: None };
    let token = state.tokens.sign(&claims);
    let expires_at = chrono::DateTime::from_timestamp((now + ttl) as i64, 0).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(TokenResponse { token, identity, tenant_id: t.id, expires_at })))
}
