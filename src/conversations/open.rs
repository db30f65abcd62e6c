//! Opening a room for a new inbound peer: the conversation, the peer as its first participant
//! and the peer's binding, made in one store call (`ChannelStore::open_room`) instead of a
//! create and an add, each with its own writes.
//!
//! Owns the rules of that one path — the same checks, contact and events as
//! `create_with_id` followed by `add_participant_to` (`conversation.created`, its timers,
//! the contact's `contact.created` or `contact.updated`, `participant.added`) — so every
//! invariant of those two holds for an inbound room. Why a path of its own: on Redis the
//! chain cost a script and a round trip per step, and a new peer's first message waited for
//! all of them (issue 18). It does not find rooms or decide when to open one (the inbound door,
//! `channels::inbound_room`), nor post the message.

use super::{check_metadata, check_name, event, participants::check_endpoint, status};
use crate::app::AppState;
use crate::error::Result;
use crate::events::emit;
use crate::model::{Address, Conversation, Participant};
use crate::store::{Binding, Opened};
use crate::wire::EventKind;
use uuid::Uuid;

/// The conversation an inbound peer's first message opens.
#[derive(Debug, Clone)]
pub struct NewRoom {
    pub name: String,
    pub detail: String,
    pub metadata: serde_json::Value,
}

/// What [`open_room`] did.
#[derive(Debug)]
pub enum Opening {
    /// The room, and the peer seated in it.
    Opened(Box<(Conversation, Participant)>),
    /// The peer was bound already (another message won the race): nothing was made.
    Bound(Binding),
}

/// Opens `room` with the ids `b` reserves for `peer` on `account` (the peer's contact found or
/// made first), unless the peer is bound already.
pub async fn open_room(
    state: &AppState,
    tenant: Uuid,
    account: Uuid,
    peer: &Address,
    b: Binding,
    room: NewRoom,
) -> Result<Opening> {
    check_name(state, "name", &room.name)?;
    check_name(state, "detail", &room.detail)?;
    check_metadata(&room.metadata)?;
    let e = check_endpoint(state, tenant, peer.clone(), Some(account), true).await?;
    let contact_id = super::contacts::for_address(state, tenant, &e.address).await?;
    let c = super::fresh(b.conversation_id, tenant, room.name, room.detail, room.metadata);
    let t = c.tm_create;
    let p = Participant {
        id: b.participant_id,
        conversation_id: c.id,
        tenant_id: tenant,
        address: e.address,
        account_id: e.account_id,
        linked: Vec::new(),
        reply_via: None,
        contact_id,
        last_read_seq: 0,
        tm_create: t,
        data: Default::default(),
        window_expires_at: None,
    };
    let contact_linked = match state.channel_store.open_room(account, peer, &c, &p).await? {
        Opened::Bound(existing) => return Ok(Opening::Bound(existing)),
        Opened::Created { contact_linked } => contact_linked,
    };
    if let Some(contact) = contact_id.filter(|_| !contact_linked)
        && let Err(err) = state.contacts.link_conversation(tenant, contact, c.id).await
    {
        tracing::warn!(error = %err.chain(), conversation = %c.id, %contact, "conversation not listed under its contact");
    }
    emit(state, event(EventKind::ConversationCreated, tenant, c.id, &c)).await;
    // A room nobody writes to resolves too (with `resolve_after`).
    status::plan(state, &c, None).await;
    emit(state, event(EventKind::ParticipantAdded, tenant, c.id, &p)).await;
    Ok(Opening::Opened(Box::new((c, p))))
}
