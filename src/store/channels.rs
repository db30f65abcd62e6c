//! Channel state: provider accounts, the room-binding index, and delivery bookkeeping.
//!
//! Kept apart from [`Store`](super::Store) because it only matters once channels are in play,
//! but it follows the same rules: tenant-scoped reads, and a create-if-absent `bind` that is
//! the single point where two nodes racing on the same inbound peer agree on one room.
//! `open_room` is that `bind` together with the room it reserves: on Redis (one server) one
//! script binds, creates the conversation and seats its first participant, so a new inbound
//! peer costs one script where it cost a chain of them.

use crate::error::Result;
use crate::model::{Account, Address, Conversation, Delivery, Message, Participant};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where inbound traffic from one peer on one account goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub conversation_id: Uuid,
    pub participant_id: Uuid,
}

/// Where a provider's message id points: the delivery it confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    pub participant_id: Uuid,
}

/// What [`ChannelStore::open_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// The peer was bound already (to this binding): nothing changed.
    Bound(Binding),
    /// Bound, created and seated. `contact_linked`: the room is listed under the participant's
    /// contact too (else the caller lists it: `ContactStore::link_conversation`).
    Created { contact_linked: bool },
}

/// The index key of a peer on an account: `<type>:<target>`.
pub fn peer_key(peer: &Address) -> String {
    format!("{}:{}", peer.kind.as_str(), peer.target)
}

#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    /// Creates or replaces an account.
    async fn put_account(&self, a: &Account) -> Result<()>;
    /// By id alone: provider webhooks arrive before we know the tenant.
    async fn get_account(&self, id: Uuid) -> Result<Option<Account>>;
    async fn list_accounts(&self, tenant: Uuid) -> Result<Vec<Account>>;
    async fn delete_account(&self, tenant: Uuid, id: Uuid) -> Result<bool>;

    /// Binds `(account, peer)` to `target` unless already bound; returns the existing binding
    /// when there was one (and then changes nothing).
    async fn bind(&self, account: Uuid, peer: &Address, target: Binding) -> Result<Option<Binding>>;
    async fn binding(&self, account: Uuid, peer: &Address) -> Result<Option<Binding>>;
    /// The binding of `(account, peer)` as this node last saw it, without I/O: only a guess of
    /// which room to read *together with* `binding` (a backend with round trips keeps them;
    /// `None`: no guess). Never to be acted on unless `binding` confirms it.
    fn binding_hint(&self, _account: Uuid, _peer: &Address) -> Option<Binding> {
        None
    }
    /// Removes the binding of `(account, peer)` if it still names `conversation` (a binding
    /// the peer got since, to a newer room, stays: e.g. after its old room was closed).
    async fn unbind(&self, account: Uuid, peer: &Address, conversation: Uuid) -> Result<()>;
    /// `bind` of `(account, peer)` to `p`'s room, and when it binds, the room itself: `c`
    /// created (as `Store::create_conversation`) with `p` as its first participant (as
    /// `Store::add_participant`), the peer's binding pointing at them. All or nothing where
    /// the backend can (Redis on one server: one script); elsewhere in that order, the binding
    /// released again if the room could not be made. Emits no event: the caller does.
    async fn open_room(&self, account: Uuid, peer: &Address, c: &Conversation, p: &Participant) -> Result<Opened>;

    /// Replaces a participant's linked endpoints and reply route.
    async fn update_participant(&self, p: &Participant) -> Result<()>;

    async fn put_provider_ref(&self, account: Uuid, provider_message_id: &str, r: DeliveryRef) -> Result<()>;
    async fn provider_ref(&self, account: Uuid, provider_message_id: &str) -> Result<Option<DeliveryRef>>;
    /// Applies a delivery report with `Message::apply_delivery`; returns the updated message,
    /// or `None` when nothing changed (unknown message, or a report that would go backwards).
    async fn update_delivery(&self, conversation: Uuid, message: Uuid, d: &Delivery) -> Result<Option<Message>>;
}

/// `open_room` as separate steps, for a backend that cannot do it in one (memory; Redis
/// Cluster, where the keys are in different slots): bind, create, seat. The binding is released
/// again if the room was refused (a client error); a backend failure may leave it, and the
/// inbound door takes over a binding whose room never appeared.
pub async fn open_in_steps<S: ChannelStore + super::Store + ?Sized>(
    store: &S,
    account: Uuid,
    peer: &Address,
    c: &Conversation,
    p: &Participant,
) -> Result<Opened> {
    let b = Binding { conversation_id: c.id, participant_id: p.id };
    if let Some(existing) = store.bind(account, peer, b).await? {
        return Ok(Opened::Bound(existing));
    }
    let made = match store.create_conversation(c).await {
        Ok(()) => store.add_participant(p).await,
        Err(e) => Err(e),
    };
    if let Err(e) = made {
        if e.status().is_client_error() {
            store.unbind(account, peer, c.id).await?;
        }
        return Err(e);
    }
    Ok(Opened::Created { contact_linked: false })
}
