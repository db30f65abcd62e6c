//! `/v1.0/contacts`: people across channels — create, list and find (`q=`, `address=`), read,
//! update, delete or erase, merge, their conversations, and an export of everything about one.
//! API keys only: contacts are the tenant's own data. The rules live in
//! `conversations::contacts`, `merge` and `erase`; this file only speaks HTTP.

use super::pagination::{Page, decode_cursor, encode_cursor, page_size};
use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::conversations::contacts::{self, ContactFields};
use crate::conversations::erase::{self, Export};
use crate::conversations::merge::{self, Merged};
use crate::error::{Error, ErrorBody, Json, Path, Query, Result};
use crate::model::{AddressType, Contact, ContactAddress, Conversation};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    #[serde(default)]
    pub name: String,
    pub email: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// `[{type, target}]`; each address belongs to at most one contact (409 otherwise). Phone
    /// numbers are stored in E.164.
    #[serde(default)]
    pub addresses: Vec<ContactAddress>,
}

/// Fields to change; absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Replaces every address when given.
    pub addresses: Option<Vec<ContactAddress>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeContact {
    /// The contact merged into this one (and then gone).
    pub contact_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListContacts {
    pub page_size: Option<usize>,
    pub page_token: Option<String>,
    /// Prefix of the name (or a word of it), the email or an address target, any case.
    pub q: Option<String>,
    /// The contact holding this address: `<type>:<target>`, e.g. `tel:+14155550123`.
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Also erase: redact every message the contact wrote, remove their participants and
    /// bindings. Idempotent.
    #[serde(default)]
    pub erase: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageOnly {
    pub page_size: Option<usize>,
    pub page_token: Option<String>,
}

/// `tel:+1415…` as a normalised contact address (422 when it is none).
fn parse_address(state: &AppState, s: &str) -> Result<ContactAddress> {
    let bad = || Error::invalid("invalid_address", "address must be `<type>:<target>`, e.g. `tel:+14155550123`");
    let (kind, target) = s.split_once(':').ok_or_else(bad)?;
    let kind: AddressType = serde_json::from_value(serde_json::Value::String(kind.trim().into())).map_err(|_| bad())?;
    contacts::normalise(state, &ContactAddress { kind, target: target.to_string() })
}

fn size(state: &AppState, n: Option<usize>) -> Result<usize> {
    page_size(n, state.config.limits.page_size_default, state.config.limits.page_size_max)
}

#[utoipa::path(post, path = "/v1.0/contacts", tag = "contacts", request_body = CreateContact,
    responses((status = 201, body = Contact), (status = 409, description = "an address belongs to another contact", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Json(b): Json<CreateContact>,
) -> Result<(StatusCode, Json<Contact>)> {
    let f =
        ContactFields { name: Some(b.name), email: Some(b.email), metadata: b.metadata, addresses: Some(b.addresses) };
    Ok((StatusCode::CREATED, Json(contacts::create(&state, t.id, f).await?)))
}

#[utoipa::path(get, path = "/v1.0/contacts", tag = "contacts", params(ListContacts),
    responses((status = 200, body = Page<Contact>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Query(q): Query<ListContacts>,
) -> Result<Json<Page<Contact>>> {
    let n = size(&state, q.page_size)?;
    if let Some(a) = &q.address {
        let key = parse_address(&state, a)?.key();
        let found = match state.contacts.by_address(t.id, &key).await? {
            Some(id) => state.contacts.get(t.id, id).await?,
            None => None,
        };
        return Ok(Json(Page { result: found.into_iter().collect(), next_page_token: None }));
    }
    if let Some(prefix) = q.q.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        // A search answers its best `page_size` matches; refine the prefix for others.
        let result = state.contacts.search(t.id, prefix, n).await?;
        return Ok(Json(Page { result, next_page_token: None }));
    }
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let mut result = state.contacts.list(t.id, before, n + 1).await?;
    let next_page_token = (result.len() > n).then(|| {
        result.truncate(n);
        result.last().map(|c| encode_cursor(c.id))
    });
    Ok(Json(Page { result, next_page_token: next_page_token.flatten() }))
}

#[utoipa::path(get, path = "/v1.0/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Contact>> {
    Ok(Json(contacts::get(&state, t.id, id).await?))
}

#[utoipa::path(put, path = "/v1.0/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path)), request_body = UpdateContact,
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(b): Json<UpdateContact>,
) -> Result<Json<Contact>> {
    let f = ContactFields { name: b.name, email: b.email, metadata: b.metadata, addresses: b.addresses };
    Ok(Json(contacts::update(&state, t.id, id, f).await?))
}

#[utoipa::path(delete, path = "/v1.0/contacts/{id}", tag = "contacts", params(("id" = Uuid, Path), DeleteParams),
    responses((status = 204, description = "deleted (or erased)"), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Query(q): Query<DeleteParams>,
) -> Result<StatusCode> {
    if q.erase {
        erase::erase(&state, t.id, id).await?;
    } else {
        contacts::delete(&state, t.id, id).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1.0/contacts/{id}/merge", tag = "contacts", params(("id" = Uuid, Path)), request_body = MergeContact,
    responses((status = 200, body = Merged), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn merge(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(b): Json<MergeContact>,
) -> Result<Json<Merged>> {
    Ok(Json(merge::merge(&state, t.id, id, b.contact_id).await?))
}

#[utoipa::path(get, path = "/v1.0/contacts/{id}/conversations", tag = "contacts", params(("id" = Uuid, Path), PageOnly),
    responses((status = 200, body = Page<Conversation>), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn conversations(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Query(q): Query<PageOnly>,
) -> Result<Json<Page<Conversation>>> {
    let n = size(&state, q.page_size)?;
    let contact = contacts::get(&state, t.id, id).await?;
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let mut result = contacts::conversations(&state, t.id, contact.id, before, n + 1).await?;
    let next_page_token = (result.len() > n).then(|| {
        result.truncate(n);
        result.last().map(|c| encode_cursor(c.id))
    });
    Ok(Json(Page { result, next_page_token: next_page_token.flatten() }))
}

#[utoipa::path(get, path = "/v1.0/contacts/{id}/export", tag = "contacts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Export), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn export(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Export>> {
    Ok(Json(erase::export(&state, t.id, id).await?))
}
