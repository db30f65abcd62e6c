//! `/v1.0/canned_responses`: the tenant's saved replies (list with a short-code prefix filter,
//! create, read, change, delete).
//!
//! Callers: an API key, or an agent, admin or operator token of the tenant (the composer
//! inserts them by typing `/`); end-user tokens get 403. The rules are
//! `crate::agents::canned`; this file translates shapes.

use crate::agents::Caller;
use crate::agents::canned::{self, Canned};
use crate::app::AppState;
use crate::error::{Error, ErrorBody, Json, Path, Query, Result};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCanned {
    /// 1–64 of `a-z 0-9 _ -`, unique in the tenant.
    pub short_code: String,
    /// At most 4096 bytes.
    pub content: String,
}

/// Fields to change; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCanned {
    pub short_code: Option<String>,
    pub content: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CannedParams {
    /// Only those whose short code starts with this (case-insensitive).
    pub q: Option<String>,
}

/// Every match, ordered by short code (a tenant keeps at most 1000).
#[derive(Debug, Serialize, ToSchema)]
pub struct CannedList {
    pub result: Vec<Canned>,
}

fn tenant(caller: &Caller) -> Result<Uuid> {
    if let Caller::Client(c) = caller
        && c.convs.is_some()
    {
        return Err(Error::Forbidden("an end-user token cannot use canned responses".into()));
    }
    Ok(caller.tenant())
}

#[utoipa::path(get, path = "/v1.0/canned_responses", tag = "canned_responses", params(CannedParams),
    responses((status = 200, body = CannedList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CannedParams>,
) -> Result<Json<CannedList>> {
    let t = tenant(&caller)?;
    let prefix = q.q.unwrap_or_default().trim().trim_start_matches('/').to_lowercase();
    if prefix.len() > canned::MAX_CODE {
        return Ok(Json(CannedList { result: Vec::new() }));
    }
    Ok(Json(CannedList { result: canned::list(&*state.records, t, &prefix).await? }))
}

#[utoipa::path(post, path = "/v1.0/canned_responses", tag = "canned_responses", request_body = CreateCanned,
    responses((status = 201, body = Canned), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "`short_code_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_short_code`, `invalid_content`, `too_many`", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(b): Json<CreateCanned>,
) -> Result<(StatusCode, Json<Canned>)> {
    let t = tenant(&caller)?;
    Ok((StatusCode::CREATED, Json(canned::create(&*state.records, t, b.short_code, b.content).await?)))
}

#[utoipa::path(get, path = "/v1.0/canned_responses/{id}", tag = "canned_responses", params(("id" = Uuid, Path)),
    responses((status = 200, body = Canned), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> Result<Json<Canned>> {
    Ok(Json(canned::get(&*state.records, tenant(&caller)?, id).await?))
}

#[utoipa::path(patch, path = "/v1.0/canned_responses/{id}", tag = "canned_responses", params(("id" = Uuid, Path)), request_body = UpdateCanned,
    responses((status = 200, body = Canned), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(b): Json<UpdateCanned>,
) -> Result<Json<Canned>> {
    let t = tenant(&caller)?;
    Ok(Json(canned::update(&*state.records, t, id, b.short_code, b.content).await?))
}

#[utoipa::path(delete, path = "/v1.0/canned_responses/{id}", tag = "canned_responses", params(("id" = Uuid, Path)),
    responses((status = 200, body = Canned, description = "the deleted canned response"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> Result<Json<Canned>> {
    Ok(Json(canned::delete(&*state.records, tenant(&caller)?, id).await?))
}
