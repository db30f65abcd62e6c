//! The inbound door's room finding: which room an inbound message belongs to — the room of the
//! thread it answers (email), the room bound to `(account, peer)`, or with `match: contact` the
//! contact's latest open room — and opening one, race-free across nodes, for a new peer.
//!
//! Split from `inbound.rs` (the handler and the post) because it is a concept of its own: the
//! binding index and room creation. It does not post messages nor verify anything; it is part
//! of the inbound door (floor 11) and calls `conversations` the way the REST API does.

use super::InboundMessage;
use super::inbound::clip;
use crate::app::AppState;
use crate::conversations::{self, ContactOf, NewParticipant, NewRoom, Opening, RoomRead};
use crate::error::{Error, Result};
use crate::model::{Account, Address, ConversationStatus, MatchMode, Participant};
use crate::store::{Binding, MemberList};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The room of the thread `m` answers, if we know one and the sender can take part there;
/// else the sender's own room, if it has one; `None` for a new peer. `true`: the room was
/// opened for this message (its binding vanished meanwhile).
pub(super) async fn route(state: &AppState, account: &Account, m: &InboundMessage) -> Result<Option<Room>> {
    let (replies_to, name) = m.thread.as_ref().map_or((&[][..], ""), |t| (&t.replies_to[..], t.subject.as_str()));
    for id in replies_to {
        if let Some(r) = state.channel_store.provider_ref(account.id, id).await? {
            let status = status(state, account, r.conversation_id).await?;
            if status == Some(ConversationStatus::Closed) {
                break;
            }
            if let Some(p) = seat(state, account, r.conversation_id, &m.from).await? {
                return Ok(Some(Room { id: r.conversation_id, participant: p, opened: false, read: None }));
            }
            break;
        }
    }
    let known = match state.channel_store.binding_hint(account.id, &m.from) {
        // The room this node saw the peer bound to, read together with the binding (one round
        // of I/O instead of two); taken only when the binding, read now, still names it and the
        // peer sits there. The post's append checks the room's status itself.
        Some(hint) => {
            let (fresh, read) = tokio::join!(
                state.channel_store.binding(account.id, &m.from),
                conversations::read_room(state, account.tenant_id, hint.conversation_id)
            );
            let fresh = fresh?;
            if fresh == Some(hint)
                && let Ok(Some((c, members))) = read
                && let Some(p) = members.iter().find(|p| p.id == hint.participant_id).cloned()
            {
                return Ok(Some(Room {
                    id: hint.conversation_id,
                    participant: p,
                    opened: false,
                    read: Some((c, members)),
                }));
            }
            fresh
        }
        None => state.channel_store.binding(account.id, &m.from).await?,
    };
    if known.is_none()
        && account.match_mode == MatchMode::Contact
        && let Some(room) = contact_room(state, account, &m.from).await?
    {
        return Ok(Some(room));
    }
    let Some(known) = known else { return Ok(None) };
    resolve_room(state, account, &m.from, name, None, Some(known)).await.map(Some)
}

/// Contact matching (`match: contact`): a sender this account has no room for, who is a known
/// contact, joins the contact's most recent conversation that is not closed — its address
/// becomes a link of the contact's participant there (bound, so the next message goes
/// straight there). `None`: no such contact or conversation; the caller opens a room.
async fn contact_room(state: &AppState, account: &Account, from: &Address) -> Result<Option<Room>> {
    let tenant = account.tenant_id;
    let Some(contact) = conversations::contacts::lookup(state, tenant, from).await? else { return Ok(None) };
    for c in conversations::contacts::conversations(state, tenant, contact, None, 20).await? {
        if c.lifecycle.status == ConversationStatus::Closed {
            continue;
        }
        let members = state.store.list_participants(c.id).await?;
        let Some(p) = members.into_iter().find(|p| p.contact_id == Some(contact)) else { continue };
        return match conversations::link_endpoint(state, tenant, c.id, p.id, from.clone(), Some(account.id)).await {
            Ok(p) => Ok(Some(Room { id: c.id, participant: p, opened: false, read: None })),
            // Bound elsewhere meanwhile (a racing message), or a sender no number can be
            // made of: the ordinary path takes it from here.
            Err(Error::Conflict(_) | Error::Unprocessable { .. } | Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(None)
}

/// The sender's participant in `conversation`, added (and bound) if it is not there yet;
/// `None` when it cannot be: the room is gone, or the sender is bound to another room.
async fn seat(state: &AppState, account: &Account, conversation: Uuid, from: &Address) -> Result<Option<Participant>> {
    if let Some(p) = conversations::member(state, conversation, from.kind, &from.target).await? {
        return Ok(Some(p));
    }
    let new = NewParticipant {
        id: None,
        address: from.clone(),
        account_id: Some(account.id),
        as_sent: true,
        contact: ContactOf::Auto,
    };
    match conversations::add_participant(state, account.tenant_id, conversation, new).await {
        Ok(p) => Ok(Some(p)),
        Err(Error::Conflict(_) | Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A sender's room as the inbound door resolved it.
#[derive(Debug)]
pub struct Room {
    pub id: Uuid,
    pub participant: Participant,
    /// This call opened the room.
    pub opened: bool,
    /// The room as just read (or, opened here, as created: its one member is `participant`),
    /// for the post (`PostRequest::room`); `None`: the post reads it.
    pub read: Option<RoomRead>,
}

/// The room and participant for `peer` on `account`, created when there is none (named
/// `name`, or after the peer when that is empty, with the ids `reserved` when given).
/// `known` is the peer's binding when the caller just read it (saves reading it again).
///
/// Race-free across nodes: the ids are reserved in the binding index (create-if-absent) in the
/// same step that creates the room (Redis on one server: one script; elsewhere the binding
/// first); whoever loses the race uses the winner's room, waiting briefly for the winner to
/// finish creating it where that is not one step.
pub async fn resolve_room(
    state: &AppState,
    account: &Account,
    peer: &Address,
    name: &str,
    mut reserved: Option<Binding>,
    mut known: Option<Binding>,
) -> Result<Room> {
    let store = &state.channel_store;
    for attempt in 0..20 {
        let binding = match known.take() {
            Some(b) => Some(b),
            // The caller just found none and brings the ids to reserve: straight to the
            // create-if-absent below, which still catches a sender racing this one.
            None if attempt == 0 && reserved.is_some() => None,
            None => store.binding(account.id, peer).await?,
        };
        if let Some(b) = binding {
            // A closed room is found out by the post (see `receive_in`), not read here. The
            // room is read as the post reads it, once: the post takes it from `Room::read`.
            let seated = match conversations::read_room(state, account.tenant_id, b.conversation_id).await? {
                Some((c, members)) => match members.iter().find(|p| p.id == b.participant_id).cloned() {
                    Some(p) => Ok((p, Some((c, members)))),
                    // Not in the node's cached list: it may have joined on another node a
                    // moment ago (its publication still on the way); the store decides.
                    None => {
                        conversations::participant(state, b.conversation_id, b.participant_id).await.map(|p| (p, None))
                    }
                },
                None => Err(Error::NotFound("conversation")),
            };
            match seated {
                Ok((p, read)) => return Ok(Room { id: b.conversation_id, participant: p, opened: false, read }),
                Err(Error::NotFound(_)) if attempt < 19 => {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    continue;
                }
                Err(Error::NotFound(_)) => {
                    // A binding left behind by a room that never finished; take it over.
                    store.unbind(account.id, peer, b.conversation_id).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let b = reserved
            .take()
            .unwrap_or_else(|| Binding { conversation_id: Uuid::now_v7(), participant_id: Uuid::now_v7() });
        let (c, participant) = match open_room(state, account, peer, name, b).await? {
            Opening::Opened(room) => *room,
            // Another message of this peer bound it first: its room, as found above.
            Opening::Bound(existing) => {
                known = Some(existing);
                continue;
            }
        };
        crate::agents::auto_assign(state, account.tenant_id, b.conversation_id).await;
        let read = Some((Arc::new(c), MemberList::from(vec![participant.clone()])));
        return Ok(Room { id: b.conversation_id, participant, opened: true, read });
    }
    Err(Error::unavailable("could not resolve the conversation for this sender; retry"))
}

/// The status of `conversation`; `None` when it is gone (the caller finds out).
async fn status(state: &AppState, account: &Account, conversation: Uuid) -> Result<Option<ConversationStatus>> {
    match conversations::get(state, account.tenant_id, conversation).await {
        Ok(c) => Ok(Some(c.lifecycle.status)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the room of `peer` with the ids `b` (bound in the same step; see
/// `conversations::open_room`), named `name`, else after the peer.
async fn open_room(state: &AppState, account: &Account, peer: &Address, name: &str, b: Binding) -> Result<Opening> {
    let mut name = [name, peer.name.as_str(), peer.target.as_str()]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_string();
    // A name the limits refuse would fail the webhook, which the provider retries forever.
    clip(&mut name, state.config.limits.max_name_bytes);
    let detail = format!("{} via {}", peer.kind.as_str(), account.name);
    let metadata = serde_json::json!({"source": {"account_id": account.id, "provider": account.provider}});
    let room = NewRoom { name, detail, metadata };
    conversations::open_room(state, account.tenant_id, account.id, peer, b, room).await
}
