//! Participants: who is in a room and how each is reached.
//!
//! A webchat participant is reached live over WebSocket. Any other participant is reached
//! through a channel account, and its `(account, address)` pair is *bound* to the room in the
//! store's binding index — the same index inbound provider webhooks use to find the room. A
//! pair can be bound to one room only, so adding a phone number that already talks in another
//! conversation on the same account is a conflict, not a silent second room.

use super::{event, get};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::events::emit;
use crate::model::{Address, AddressType, Endpoint, Participant, now};
use crate::store::Binding;
use crate::wire::{EventKind, Publication};
use uuid::Uuid;

/// What the API (or an inbound channel) asks to add.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    /// Chosen by the caller when a room binding already reserved it (for this participant,
    /// in this room): the binding is then not written again.
    pub id: Option<Uuid>,
    pub address: Address,
    pub account_id: Option<Uuid>,
    /// The address is a provider's sender (inbound): a phone target that is no number we can
    /// normalise (a short code, an alphanumeric sender id) is kept as written, since refusing
    /// it would only make the provider retry. Addresses a caller typed are refused instead.
    /// The account is then the one the inbound door just read, so it is taken from the node's
    /// account cache (`AppState::accounts`), not read again.
    pub as_sent: bool,
    /// Which contact this participant is.
    pub contact: ContactOf,
}

/// The contact of a new participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactOf {
    /// The contact holding the address, created for it when there is none (agents: none).
    Auto,
    /// This contact; the address becomes its own.
    Is(Uuid),
    /// None: staff (an operator token joining a room to write) are nobody's contact.
    Staff,
}

/// Validates an address and, for channel addresses, its account; returns the cleaned endpoint.
pub(super) async fn check_endpoint(
    state: &AppState,
    tenant: Uuid,
    address: Address,
    account_id: Option<Uuid>,
    as_sent: bool,
) -> Result<Endpoint> {
    let target = address.target.trim().to_string();
    // Email addresses are matched case-insensitively (inbound mail lowercases the sender).
    let target = if address.kind == AddressType::Email { target.to_ascii_lowercase() } else { target };
    if target.is_empty() {
        return Err(Error::invalid("invalid_address", "address.target must not be empty"));
    }
    super::check_name(state, "address.target", &target)?;
    super::check_name(state, "address.name", &address.name)?;
    let address = Address { target, ..address };
    match (address.kind, account_id) {
        (AddressType::Webchat | AddressType::Agent, None) => Ok(Endpoint { address, account_id: None }),
        (kind @ (AddressType::Webchat | AddressType::Agent), Some(_)) => Err(Error::invalid(
            "invalid_account",
            format!("{} participants are reached live; they take no account_id", kind.as_str()),
        )),
        (kind, None) => Err(Error::invalid(
            "account_required",
            format!("a `{}` address needs the account_id of a `{}` channel account", kind.as_str(), kind.as_str()),
        )),
        (kind, Some(id)) => {
            let account = if as_sent {
                state.accounts.get(state.channel_store.as_ref(), id).await?
            } else {
                state.channel_store.get_account(id).await?
            };
            let account = account
                .filter(|a| a.tenant_id == tenant)
                // The conversation exists; what the body names does not: 422, not 404.
                .ok_or_else(|| {
                    Error::invalid("invalid_account", format!("account_id {id} names no channel account"))
                })?;
            if account.kind != kind {
                return Err(Error::invalid(
                    "account_mismatch",
                    format!("account {id} serves `{}` addresses, not `{}`", account.kind.as_str(), kind.as_str()),
                ));
            }
            let address = if crate::phone::is_phone(kind) {
                let target = if as_sent {
                    crate::phone::for_sender(&account, &address.target)
                } else {
                    crate::phone::for_account(&account, &address.target)?
                };
                Address { target, ..address }
            } else {
                address
            };
            Ok(Endpoint { address, account_id: Some(id) })
        }
    }
}

/// Reserves `(account, address)` for this participant's room; 409 if another room has it.
async fn bind(state: &AppState, e: &Endpoint, target: Binding) -> Result<()> {
    let Some(account) = e.account_id else { return Ok(()) };
    match state.channel_store.bind(account, &e.address, target).await? {
        Some(b) if b != target => Err(Error::Conflict(format!(
            "{}:{} on this account already belongs to conversation {}",
            e.address.kind.as_str(),
            e.address.target,
            b.conversation_id
        ))),
        _ => Ok(()),
    }
}

/// Releases every channel binding of `p` (it left, or its room was deleted).
pub(super) async fn unbind_all(state: &AppState, p: &Participant) {
    for e in p.endpoints() {
        if let Some(account) = e.account_id
            && let Err(err) = state.channel_store.unbind(account, &e.address, p.conversation_id).await
        {
            tracing::warn!(error = %err.chain(), "binding not released");
        }
    }
}

pub async fn add_participant(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    new: NewParticipant,
) -> Result<Participant> {
    let c = get(state, tenant, conversation).await?;
    add_participant_to(state, &c, new).await
}

/// [`add_participant`] to `c`, which the caller has just read or created (not read again).
pub async fn add_participant_to(
    state: &AppState,
    c: &crate::model::Conversation,
    new: NewParticipant,
) -> Result<Participant> {
    let (tenant, conversation) = (c.tenant_id, c.id);
    let e = check_endpoint(state, tenant, new.address, new.account_id, new.as_sent).await?;
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    let contact_id = match new.contact {
        ContactOf::Is(c) => {
            // A named contact must exist; the address becomes one of its own (unless another
            // contact holds it: then the caller named the wrong person).
            super::contacts::get(state, tenant, c)
                .await
                .map_err(|_| Error::invalid("invalid_contact", format!("contact_id {c} names no contact")))?;
            let key = crate::model::ContactAddress { kind: e.address.kind, target: e.address.target.clone() }.key();
            match state.contacts.by_address(tenant, &key).await? {
                Some(owner) if owner != c => {
                    return Err(Error::Conflict(format!("{key} belongs to contact {owner}, not {c}")));
                }
                Some(_) => {}
                None => super::contacts::claim(state, tenant, c, &e.address).await?,
            }
            Some(c)
        }
        ContactOf::Auto => super::contacts::for_address(state, tenant, &e.address).await?,
        ContactOf::Staff => None,
    };
    if new.id.is_none() {
        bind(state, &e, Binding { conversation_id: conversation, participant_id: id }).await?;
    }
    let p = Participant {
        id,
        conversation_id: conversation,
        tenant_id: tenant,
        address: e.address.clone(),
        account_id: e.account_id,
        linked: Vec::new(),
        reply_via: None,
        contact_id,
        last_read_seq: 0,
        tm_create: now(),
        data: Default::default(),
        window_expires_at: None,
    };
    if let Err(err) = state.store.add_participant(&p).await {
        if let Some(account) = e.account_id {
            let _ = state.channel_store.unbind(account, &e.address, conversation).await;
        }
        return Err(err);
    }
    if let Some(c) = contact_id
        && let Err(err) = state.contacts.link_conversation(tenant, c, conversation).await
    {
        tracing::warn!(error = %err.chain(), %conversation, contact = %c, "conversation not listed under its contact");
    }
    emit(state, event(EventKind::ParticipantAdded, tenant, conversation, &p)).await;
    Ok(p)
}

/// Gives a participant another address (e.g. their LINE id next to their phone number):
/// inbound on it lands in this room from now on.
pub async fn link_endpoint(
    state: &AppState,
    tenant: Uuid,
    conversation: Uuid,
    participant_id: Uuid,
    address: Address,
    account_id: Option<Uuid>,
) -> Result<Participant> {
    get(state, tenant, conversation).await?;
    let mut p = participant(state, conversation, participant_id).await?;
    let e = check_endpoint(state, tenant, address, account_id, false).await?;
    if p.endpoints().iter().any(|x| x.address.same_endpoint(&e.address) && x.account_id == e.account_id) {
        return Ok(p);
    }
    bind(state, &e, Binding { conversation_id: conversation, participant_id }).await?;
    if let Some(c) = p.contact_id {
        super::contacts::claim(state, tenant, c, &e.address).await?;
    }
    p.linked.push(e);
    state.channel_store.update_participant(&p).await?;
    emit(state, event(EventKind::ParticipantUpdated, tenant, conversation, &p)).await;
    Ok(p)
}

pub async fn remove_participant(state: &AppState, tenant: Uuid, conversation: Uuid, id: Uuid) -> Result<Participant> {
    get(state, tenant, conversation).await?;
    let p = participant(state, conversation, id).await?;
    if !state.store.remove_participant(conversation, id).await? {
        return Err(Error::NotFound("participant"));
    }
    unbind_all(state, &p).await;
    // Its open connections (on every node) lose the room now, not at their next subscribe.
    if let Err(e) = state.broker.publish(Publication::Removed { room: conversation, participant_id: id }).await {
        tracing::warn!(error = %e, %conversation, participant = %id, "removal not announced to live connections");
    }
    emit(state, event(EventKind::ParticipantRemoved, tenant, conversation, &p)).await;
    Ok(p)
}

pub async fn participant(state: &AppState, conversation: Uuid, id: Uuid) -> Result<Participant> {
    let list = state.store.list_participants(conversation).await?;
    list.into_iter().find(|p| p.id == id).ok_or(Error::NotFound("participant"))
}

/// The webchat participant of `conversation` whose identity is `identity`, if any.
pub async fn webchat_participant(state: &AppState, conversation: Uuid, identity: &str) -> Result<Option<Participant>> {
    member(state, conversation, AddressType::Webchat, identity).await
}

/// The participant of `conversation` at address `kind:target`, if any (a live identity: a
/// webchat user or an agent).
pub async fn member(
    state: &AppState,
    conversation: Uuid,
    kind: AddressType,
    target: &str,
) -> Result<Option<Participant>> {
    let list = state.store.list_participants(conversation).await?;
    Ok(list.into_iter().find(|p| p.address.kind == kind && p.address.target == target))
}
