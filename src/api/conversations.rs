//! `/v1.0/conversations`: create, list (newest first, cursor-paged, filtered by owner, status,
//! participant address, channel and a name or address prefix), get, update
//! (including the owner), unassign, delete. Reads also accept agent tokens (`agents::Caller`).

use super::pagination::{Page, decode_cursor, encode_cursor, page_size};
use super::query_parts::QueryParts;
use super::reads::{ConversationView, annotate};
use crate::agents::{self, Caller};
use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::conversations;
use crate::error::{Error, ErrorBody, Json, Path, Result};
use crate::model::{AddressType, Conversation, ConversationStatus, Timers};
use crate::store::{ConversationFilter, OwnerFilter, search_text};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
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
    /// `agent` to assign (the default when `owner_id` is given), `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub owner_type: Option<Option<String>>,
    /// The agent identity to assign to, `null` to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub owner_id: Option<Option<String>>,
    /// The new status. `closed` is final: changing a closed conversation's status is 409
    /// `closed`. Agent tokens may change the status and the owner (nothing else) of the
    /// conversations they may act on.
    pub status: Option<ConversationStatus>,
    /// With `snoozed` (required, in the future): when it opens again by itself.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// This conversation's own timers (seconds or ISO-8601 durations such as `PT10M`); a timer
    /// left out follows the tenant's default, `0` turns it off.
    pub timers: Option<Timers>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl UpdateConversation {
    /// Whether the body changes more than an agent token may: anything but the status and
    /// the owner.
    fn beyond_agent(&self) -> bool {
        self.name.is_some() || self.detail.is_some() || self.metadata.is_some() || self.timers.is_some()
    }

    /// The owner change asked for: `None` = leave it, `Some(None)` = unassign.
    fn owner(&self) -> Result<Option<Option<String>>> {
        let bad = |m: &str| Err(Error::invalid("invalid_owner", m));
        match (&self.owner_type, &self.owner_id) {
            (Some(Some(t)), _) if t != "agent" => bad("owner_type must be `agent` or null"),
            (None, None) => Ok(None),
            (None | Some(Some(_)), Some(Some(id))) => Ok(Some(Some(id.clone()))),
            (Some(Some(_)), _) => bad("owner_type `agent` needs an owner_id (the agent identity)"),
            (Some(None), Some(Some(_))) => bad("owner_type null unassigns: give owner_id null too, or omit it"),
            (_, _) => Ok(Some(None)),
        }
    }
}

/// The list's paging and owner params; its filters are [`ConversationFilters`], read from the
/// same query string (`QueryParts`: a key neither names is a 400).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page (default `limits.page_size_default`, at most `limits.page_size_max`).
    pub page_size: Option<usize>,
    /// `next_page_token` from the previous page.
    pub page_token: Option<String>,
    /// Only conversations owned by this agent; `none` = only unassigned ones. With an agent
    /// token: its own identity or `none` (default: both).
    pub owner_id: Option<String>,
    /// `true`: only unassigned conversations (the same as `owner_id=none`).
    pub unassigned: Option<bool>,
}

/// The list's filters beyond the owner, which `GET /v1.0/conversations/counts` takes too, so
/// a count always means what the list shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationFilters {
    /// Only conversations with this status (`open`, `pending`, `snoozed`, `resolved`, `closed`).
    #[param(value_type = Option<ConversationStatus>)]
    pub status: Option<String>,
    /// `<type>:<target>` (e.g. `tel:+14155550123`; a phone number in any spelling): only
    /// conversations where a participant has this address, as its own or a linked one, on any
    /// account. With `account_id`: only the conversation this peer address is bound to on
    /// that account, and the bare target (`+14155550123`) is enough.
    pub address: Option<String>,
    /// The channel account `address` is reached through.
    pub account_id: Option<Uuid>,
    /// An address type (`tel`, `whatsapp`, `webchat`, …): only conversations with a
    /// participant on that channel.
    #[param(value_type = Option<AddressType>)]
    pub channel: Option<String>,
    /// Case-insensitive prefix of the conversation's name, or of a participant's address
    /// target or display name.
    pub q: Option<String>,
    /// Only conversations this contact took part in (walks the contact's own list).
    pub contact_id: Option<Uuid>,
}

impl ConversationFilters {
    /// The filters of this query beyond the owner, checked and normalised (422 `invalid_filter`
    /// or `invalid_address`).
    /// `address` is a filter unless it goes with `account_id` (a binding lookup instead).
    pub(super) fn filter(&self, owner: OwnerFilter) -> Result<ConversationFilter> {
        let bad = |m: String| Error::invalid("invalid_filter", m);
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(
                ConversationStatus::parse(s)
                    .ok_or_else(|| bad(format!("status `{s}` is none of open, pending, snoozed, resolved, closed")))?,
            ),
        };
        let channel = match self.channel.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(c) => Some(address_type(c).ok_or_else(|| bad(format!("channel `{c}` is no address type")))?),
        };
        let address = match self.address.as_deref().map(str::trim) {
            _ if self.account_id.is_some() => None,
            None | Some("") => None,
            Some(a) => Some(participant_address(a)?),
        };
        let q = self.q.as_deref().map(search_text).filter(|q| !q.is_empty());
        Ok(ConversationFilter { owner, status, address, channel, q })
    }
}

impl ListParams {
    /// The `owner_id` asked for, `unassigned=true` being `owner_id=none`.
    fn owner_id(&self) -> Result<Option<&str>> {
        match (self.unassigned, self.owner_id.as_deref().map(str::trim)) {
            (Some(true), None | Some("" | "none")) => Ok(Some("none")),
            (Some(true), Some(_)) => {
                Err(Error::invalid("invalid_filter", "`unassigned=true` and an `owner_id`: give one of them"))
            }
            (_, owner) => Ok(owner),
        }
    }
}

fn address_type(s: &str) -> Option<AddressType> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase())).ok()
}

/// `<type>:<target>` as participants store it: a phone target in E.164, an email lowercase.
fn participant_address(raw: &str) -> Result<(AddressType, String)> {
    let bad = || {
        Error::invalid("invalid_address", format!("address `{raw}` is not `<type>:<target>` (e.g. `tel:+14155550123`)"))
    };
    let (kind, target) = raw.split_once(':').ok_or_else(bad)?;
    let (kind, target) = (address_type(kind.trim()).ok_or_else(bad)?, target.trim());
    if target.is_empty() {
        return Err(bad());
    }
    let target = match kind {
        k if crate::phone::is_phone(k) => crate::phone::e164(target, None)?,
        AddressType::Email => target.to_ascii_lowercase(),
        _ => target.to_string(),
    };
    Ok((kind, target))
}

/// The conversation `address` is bound to on `account` (none, or one).
pub(super) async fn by_address(
    state: &AppState,
    caller: &Caller,
    account: Uuid,
    address: &str,
) -> Result<Vec<Conversation>> {
    let a = state
        .channel_store
        .get_account(account)
        .await?
        .filter(|a| a.tenant_id == caller.tenant())
        .ok_or(Error::NotFound("account"))?;
    let target = if crate::phone::is_phone(a.kind) {
        crate::phone::for_account(&a, address)?
    } else {
        address.trim().to_string()
    };
    let peer = crate::model::Address { kind: a.kind, target, name: String::new() };
    let Some(b) = state.channel_store.binding(a.id, &peer).await? else { return Ok(Vec::new()) };
    match caller.conversation(state, b.conversation_id).await {
        Ok(c) => Ok(vec![c]),
        Err(Error::NotFound(_) | Error::Forbidden(_)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
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

#[utoipa::path(get, path = "/v1.0/conversations", tag = "conversations", params(ListParams, ConversationFilters),
    responses((status = 200, body = Page<ConversationView>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "`account_id` names no account of this tenant", body = ErrorBody),
        (status = 422, description = "`invalid_filter`: an unknown `status` or `channel`, `account_id` without `address`, `unassigned=true` with an `owner_id`; `invalid_address`: an `address` that is not `<type>:<target>` or a phone number that is not one", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParts(q, f): QueryParts<ListParams, ConversationFilters>,
) -> Result<Json<Page<ConversationView>>> {
    if let (Some(account), Some(address)) = (f.account_id, f.address.as_deref()) {
        // The binding lookup (it applies the caller's visibility itself); the other filters
        // narrow its one result.
        let owner = match caller {
            Caller::Client(_) => OwnerFilter::Any,
            _ => caller.owner_filter(q.owner_id()?)?,
        };
        let filter = f.filter(owner)?;
        let mut result = Vec::new();
        for c in by_address(&state, &caller, account, address).await? {
            if filter.matches(&c, &state.store.list_participants(c.id).await?) {
                result.push(c);
            }
        }
        let result = annotate(&state, &caller, result).await?;
        return Ok(Json(Page { result, next_page_token: None }));
    }
    if f.account_id.is_some() {
        return Err(Error::invalid("invalid_filter", "`account_id` goes with `address`: give both"));
    }
    let limits = &state.config.limits;
    let size = page_size(q.page_size, limits.page_size_default, limits.page_size_max)?;
    let before = q.page_token.as_deref().map(decode_cursor).transpose()?;
    let filter = f.filter(caller.owner_filter(q.owner_id()?)?)?;
    let mut result = match f.contact_id {
        // The contact's own conversation list drives; the other filters check each one.
        Some(contact) => {
            conversations::contacts::find(&state, caller.tenant(), contact, &filter, before, size + 1).await?
        }
        None => state.store.find_conversations(caller.tenant(), &filter, before, size + 1).await?,
    };
    let next_page_token = if result.len() > size {
        result.truncate(size);
        result.last().map(|c| encode_cursor(c.id))
    } else {
        None
    };
    let result = annotate(&state, &caller, result).await?;
    Ok(Json(Page { result, next_page_token }))
}

#[utoipa::path(get, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationView, description = "to an end-user token: its conversation without `metadata`, `detail` and timers"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<ConversationView>> {
    let c = match &caller {
        // An end user sees its room's name, status and owner, not the operator's own data.
        Caller::Client(claims) if claims.convs.is_some() => {
            caller.messages_of(&state, id).await?;
            let mut c = conversations::get(&state, claims.tid, id).await?;
            c.metadata = serde_json::json!({});
            c.detail = String::new();
            c.timers = None;
            c
        }
        _ => caller.conversation(&state, id).await?,
    };
    annotate(&state, &caller, vec![c]).await?.into_iter().next().map(Json).ok_or(Error::NotFound("conversation"))
}

#[utoipa::path(put, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)), request_body = UpdateConversation,
    responses((status = 200, body = Conversation), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "an agent token changing more than the status and the owner, or another agent's conversation", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`closed`: the conversation is closed for good", body = ErrorBody),
        (status = 422, description = "`invalid_owner`, `invalid_status`; `unknown_agent`: an agent token assigning to an identity that is no agent account of the tenant", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateConversation>,
) -> Result<Json<Conversation>> {
    let tenant = caller.tenant();
    let owner = body.owner()?;
    match &caller {
        // Operator and admin tokens (no conversation scope) change what an API key may.
        Caller::Operator(_) => {}
        Caller::Client(c) if c.convs.is_none() => {}
        Caller::Agent { .. } if body.beyond_agent() || (body.status.is_none() && owner.is_none()) => {
            return Err(Error::Forbidden(
                "an agent token changes only the status and the owner; use an API key".into(),
            ));
        }
        Caller::Agent { identity, .. } => {
            // 404 / 403 (another agent's conversation) before anything changes.
            caller.conversation(&state, id).await?;
            if let Some(Some(agent)) = &owner
                && agent.trim() != identity
            {
                agents::check_assignee(&state, tenant, agent).await?;
            }
        }
        Caller::Client(_) => return Err(Error::Forbidden("a client token cannot change a conversation".into())),
    }
    if body.status.is_none() && body.snoozed_until.is_some() {
        return Err(Error::invalid("invalid_status", "`snoozed_until` goes with status `snoozed`"));
    }
    let fields = body.name.is_some() || body.detail.is_some() || body.metadata.is_some() || body.timers.is_some();
    let mut c = if fields || (owner.is_none() && body.status.is_none()) {
        conversations::update(&state, tenant, id, body.name, body.detail, body.metadata, body.timers).await?
    } else {
        conversations::get(&state, tenant, id).await?
    };
    if let Some(agent) = owner {
        c = agents::assign(&state, tenant, id, agent).await?;
    }
    if let Some(status) = body.status {
        c = conversations::status::set(&state, tenant, id, status, body.snoozed_until).await?;
    }
    Ok(Json(c))
}

#[utoipa::path(post, path = "/v1.0/conversations/{id}/unassign", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn unassign(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Conversation>> {
    Ok(Json(agents::assign(&state, t.id, id, None).await?))
}

#[utoipa::path(delete, path = "/v1.0/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Conversation, description = "the deleted conversation"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
) -> Result<Json<Conversation>> {
    let c = conversations::delete(&state, t.id, id).await?;
    crate::agents::reads::forget(&*state.records, id).await?;
    Ok(Json(c))
}
