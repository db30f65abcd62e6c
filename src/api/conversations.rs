//! `/v1.0/conversations`: create, list (newest first, cursor-paged), get, update, delete.

use super::pagination::{Page, PageParams, decode_cursor, encode_cursor, page_size};
use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::conversations;
use crate::error::{ErrorBody, Json, Path, Query, Result};
use crate::model::Conversation;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub detail: String,
    /// A JSON object of your own.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Fields to change; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    pub name: Option<String>,
    pub detail: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[utoipa::path(post, path = "/v1.0/conversations", tag = "conversations", request_body = CreateConversation,
    responses((status = 201, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Json(body): Json<CreateConversation>,
) -> Result<(StatusCode, Json<Conversation>)> {
    let c = conversations::create(&state, t.id, body.name, body.detail, body.metadata).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/v1.0/conversations", tag = "conversations", params(PageParams),
    responses((status = 200, body = Page<Conversation>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Query(q): Query<PageParams>,
) -> Result<Json<Page<Conversation>>> {
    let limits = &state.config.limits;
    let size = page_size(q.page_size, limits.page_size_default, limits.page_size_max)?;
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let mut result = state.store.list_conversations(t.id, before, size + 1).await?;
    let next_page_token = if result.len() > size {
        result.truncate(size);
        result.last().map(|c| encode_cursor(c.id))
    } else {
        None
    };
    Ok(Json(Page { result, next_page_token }))
}

#[utoipa::path(get, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Conversation>> {
    Ok(Json(conversations::get(&state, t.id, id).await?))
}

#[utoipa::path(put, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)), request_body = UpdateConversation,
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateConversation>,
) -> Result<Json<Conversation>> {
    Ok(Json(conversations::update(&state, t.id, id, body.name, body.detail, body.metadata).await?))
}

#[utoipa::path(delete, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation, description = "the deleted conversation"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Conversation>> {
    Ok(Json(conversations::delete(&state, t.id, id).await?))
}
