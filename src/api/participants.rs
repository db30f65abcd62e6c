//! `/v1.0/conversations/{id}/participants`: add, list, remove.
//!
//! The list is also open to an end-user token of the conversation, so its chat view can name
//! who wrote: it then sees every participant's display name and kind, its own address, and
//! agents' identities, but no other participant's address, links, contact or channel data.
//! Agent participants without a display name are named after their agent account, if any.

use crate::app::AppState;
use crate::auth::TenantCtx;
use crate::conversations;
use crate::error::{ErrorBody, Json, Path, Result};
use crate::model::{Address, AddressType, Participant};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddParticipant {
    pub address: Address,
    /// The channel account to reach a non-webchat address through.
    pub account_id: Option<Uuid>,
    /// The contact this participant is. Default: the contact holding the address, created
    /// for it when there is none (agents have none).
    pub contact_id: Option<Uuid>,
}

/// Another address for the same person.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkAddress {
    pub address: Address,
    pub account_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantList {
    pub result: Vec<Participant>,
}

#[utoipa::path(post, path = "/v1.0/conversations/{id}/participants", tag = "participants", params(("id" = Uuid, Path)), request_body = AddParticipant,
    responses((status = 201, body = Participant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path(id): Path<Uuid>,
    Json(body): Json<AddParticipant>,
) -> Result<(StatusCode, Json<Participant>)> {
    let new = conversations::NewParticipant {
        id: None,
        address: body.address,
        account_id: body.account_id,
        as_sent: false,
        contact: body.contact_id.map_or(conversations::ContactOf::Auto, conversations::ContactOf::Is),
    };
    let p = conversations::add_participant(&state, t.id, id, new).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

#[utoipa::path(get, path = "/v1.0/conversations/{id}/participants", tag = "participants", params(("id" = Uuid, Path)),
    responses((status = 200, body = ParticipantList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: crate::agents::Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<ParticipantList>> {
    let end_user = match &caller {
        crate::agents::Caller::Client(c) if c.convs.is_some() => {
            caller.messages_of(&state, id).await?;
            Some((c.address_kind(), c.sub.clone()))
        }
        _ => {
            caller.conversation(&state, id).await?;
            None
        }
    };
    let mut result = state.store.list_participants(id).await?;
    for p in &mut result {
        if p.address.kind == AddressType::Agent && p.address.name.is_empty() {
            let a = crate::agents::accounts::by_identity(&*state.records, p.tenant_id, &p.address.target).await?;
            p.address.name = a.map(|a| a.name).unwrap_or_default();
        }
        if let Some((kind, me)) = &end_user {
            let own = p.address.kind == *kind && p.address.target == *me;
            if !own && p.address.kind != AddressType::Agent {
                p.address.target = String::new();
            }
            if !own {
                (p.account_id, p.reply_via, p.contact_id) = (None, None, None);
                p.linked.clear();
                p.data.clear();
            }
        }
    }
    Ok(Json(ParticipantList { result }))
}

#[utoipa::path(delete, path = "/v1.0/conversations/{id}/participants/{participant_id}", tag = "participants",
    params(("id" = Uuid, Path), ("participant_id" = Uuid, Path)),
    responses((status = 200, body = Participant, description = "the removed participant"), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path((id, participant_id)): Path<(Uuid, Uuid)>,
) -> Result<Json<Participant>> {
    Ok(Json(conversations::remove_participant(&state, t.id, id, participant_id).await?))
}

#[utoipa::path(post, path = "/v1.0/conversations/{id}/participants/{participant_id}/links", tag = "participants",
    params(("id" = Uuid, Path), ("participant_id" = Uuid, Path)), request_body = LinkAddress,
    responses((status = 200, body = Participant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn link(
    State(state): State<AppState>,
    TenantCtx(t): TenantCtx,
    Path((id, participant_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<LinkAddress>,
) -> Result<Json<Participant>> {
    Ok(Json(conversations::link_endpoint(&state, t.id, id, participant_id, body.address, body.account_id).await?))
}
