//! `/v1.0/agents`: a tenant's agent accounts (create, list with presence, read, change,
//! delete) and their one-time invite links (`…/invite`).
//!
//! Writes take an API key; the list and one agent may also be read with an agent, admin or
//! operator token of the tenant (the inbox's agent picker). The rules (uniqueness, invites,
//! session revocation) are `crate::agents::{accounts, sessions}`; this file translates shapes
//! and builds the invite URL, which carries the token in its fragment (`/#invite=…`) so it
//! never reaches a server log.

use super::pagination::{Page, PageParams, decode_cursor, encode_cursor, page_size};
use crate::agents::Caller;
use crate::agents::accounts::{self, Account, AgentView, Role};
use crate::agents::sessions;
use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::error::{Error, ErrorBody, Json, Path, Query, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest avatar URL accepted.
const MAX_AVATAR_URL: usize = 2048;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// Unique in the tenant (compared lowercased).
    pub email: String,
    pub name: String,
    /// `agent` (default) or `admin`.
    pub role: Option<Role>,
    /// An `http(s)` URL of a picture.
    pub avatar_url: Option<String>,
    /// The handle used as `owner_id` and WebSocket identity: 1–64 of `a-z 0-9 . _ -`, unique in
    /// the tenant. Default: the email's local part, lowercased, other characters left out.
    pub identity: Option<String>,
}

/// Fields to change; absent fields keep their value (`avatar_url: null` removes the picture).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    pub name: Option<String>,
    /// Changing the role ends the agent's sessions (its tokens carry the old role).
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_name(state: &AppState, name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Error::invalid("invalid_name", "name must not be empty"));
    }
    crate::conversations::check_name(state, "name", n)?;
    Ok(n.to_string())
}

fn check_avatar(url: Option<String>) -> Result<Option<String>> {
    let Some(u) = url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) else { return Ok(None) };
    let ok = (u.starts_with("https://") || u.starts_with("http://"))
        && u.len() <= MAX_AVATAR_URL
        && !u.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::invalid(
            "invalid_avatar_url",
            format!("avatar_url is an http(s) URL of at most {MAX_AVATAR_URL} bytes"),
        ));
    }
    Ok(Some(u))
}

/// Where invite links point: `server.public_url`, else the origin the request came to.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if !state.config.server.public_url.is_empty() {
        return state.public_base();
    }
    let clean = |v: &str| !v.is_empty() && v.len() < 256 && v.chars().all(|c| c.is_ascii_graphic());
    if let Some(o) =
        headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).filter(|o| clean(o) && o.starts_with("http"))
    {
        return o.trim_end_matches('/').to_string();
    }
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| clean(h) && !h.contains('/')) {
        Some(h) => format!("http://{h}"),
        None => state.public_base(),
    }
}

fn invite_url(state: &AppState, headers: &HeaderMap, token: &str) -> String {
    format!("{}/#invite={token}", base_url(state, headers))
}

async fn online(state: &AppState, tenant: Uuid) -> Result<Vec<String>> {
    state.agents.available(tenant).await
}

async fn find(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Account> {
    accounts::get(&*state.records, tenant, id).await?.ok_or(Error::NotFound("agent"))
}

/// Staff of the tenant (API key, agent, admin or operator token); end-user tokens: 403.
fn staff(caller: &Caller) -> Result<Uuid> {
    if let Caller::Client(c) = caller
        && c.convs.is_some()
    {
        return Err(Error::Forbidden("an end-user token cannot list agents".into()));
    }
    Ok(caller.tenant())
}

#[utoipa::path(post, path = "/v1.0/agents", tag = "agents", request_body = CreateAgent,
    responses((status = 201, body = AgentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, description = "`email_taken` or `identity_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_email`, `invalid_identity`, `invalid_name`, `invalid_avatar_url`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    headers: HeaderMap,
    Json(b): Json<CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>)> {
    let email = accounts::clean_email(&b.email)?;
    let identity = accounts::identity_for(b.identity.as_deref(), &email)?;
    let mut a = Account {
        id: Uuid::now_v7(),
        tenant_id: t.id,
        name: check_name(&state, &b.name)?,
        role: b.role.unwrap_or(Role::Agent),
        avatar_url: check_avatar(b.avatar_url)?,
        email,
        identity,
        created_at: crate::model::now(),
        password_hash: None,
        invite_hash: None,
        invite_expires_at: None,
    };
    accounts::create(&*state.records, &a).await?;
    let token = accounts::invite(&*state.records, &mut a).await?;
    let on = online(&state, t.id).await?.contains(&a.identity);
    Ok((StatusCode::CREATED, Json(a.view(on, Some(invite_url(&state, &headers, &token))))))
}

#[utoipa::path(get, path = "/v1.0/agents", tag = "agents", params(PageParams),
    responses((status = 200, body = Page<AgentView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PageParams>,
) -> Result<Json<Page<AgentView>>> {
    let tenant = staff(&caller)?;
    let limits = &state.config.limits;
    let size = page_size(q.page_size, limits.page_size_default, limits.page_size_max)?;
    let after = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let on = online(&state, tenant).await?;
    let all = accounts::list(&*state.records, tenant).await?;
    let mut result: Vec<AgentView> = all
        .iter()
        .filter(|a| after.is_none_or(|c| a.id > c))
        .take(size + 1)
        .map(|a| a.view(on.contains(&a.identity), None))
        .collect();
    let next_page_token = if result.len() > size {
        result.truncate(size);
        result.last().map(|a| encode_cursor(a.id))
    } else {
        None
    };
    Ok(Json(Page { result, next_page_token }))
}

#[utoipa::path(get, path = "/v1.0/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> Result<Json<AgentView>> {
    let tenant = staff(&caller)?;
    let a = find(&state, tenant, id).await?;
    let on = online(&state, tenant).await?.contains(&a.identity);
    Ok(Json(a.view(on, None)))
}

#[utoipa::path(patch, path = "/v1.0/agents/{id}", tag = "agents", params(("id" = Uuid, Path)), request_body = UpdateAgent,
    responses((status = 200, body = AgentView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(b): Json<UpdateAgent>,
) -> Result<Json<AgentView>> {
    let mut a = find(&state, t.id, id).await?;
    if let Some(n) = &b.name {
        a.name = check_name(&state, n)?;
    }
    if let Some(url) = b.avatar_url {
        a.avatar_url = check_avatar(url)?;
    }
    let role_changed = b.role.is_some_and(|r| r != a.role);
    if let Some(r) = b.role {
        a.role = r;
    }
    accounts::save(&*state.records, &a).await?;
    if role_changed {
        sessions::end_all(&state, t.id, a.id).await?;
    }
    let on = online(&state, t.id).await?.contains(&a.identity);
    Ok(Json(a.view(on, None)))
}

#[utoipa::path(delete, path = "/v1.0/agents/{id}", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted; its sessions are ended"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<StatusCode> {
    let a = find(&state, t.id, id).await?;
    sessions::end_all(&state, t.id, a.id).await?;
    accounts::delete(&*state.records, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1.0/agents/{id}/invite", tag = "agents", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgentView, description = "with a fresh `invite_url`; the previous link no longer works"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn invite(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<AgentView>> {
    let mut a = find(&state, t.id, id).await?;
    let token = accounts::invite(&*state.records, &mut a).await?;
    let on = online(&state, t.id).await?.contains(&a.identity);
    Ok(Json(a.view(on, Some(invite_url(&state, &headers, &token)))))
}
