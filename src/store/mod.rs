//! Durable state behind one trait, with an in-memory and a Redis implementation.
//!
//! The store owns tenants and API-key hashes, conversations, participants and message history,
//! plus the idempotency keys that make sends retry-safe. Its central promise is `append`:
//! assign the room's next `seq`, persist the message and publish its frame **in one atomic
//! step**, so that history order equals delivery order on every node. The store does not know
//! about WebSocket connections (the hub does) or about other nodes (the broker does).

pub mod channels;
mod filter;
pub mod members;
pub mod memory;
mod memory_channels;
pub mod redis;

use crate::error::{Error, Result};
use crate::model::{Conversation, ConversationStatus, Lifecycle, Media, Message, Participant, Tenant};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use self::redis::RedisStore;
pub use channels::{Binding, ChannelStore, DeliveryRef, Opened};
pub use filter::{ConversationFilter, OwnerFilter, PREFIX_CHARS, indexed_prefix, prefixes, search_text};
pub use members::{MemberList, RoomCache};
pub use memory::MemoryStore;

/// A message about to be appended: everything but `seq`, which the store assigns.
#[derive(Debug, Clone)]
pub struct Draft {
    pub message: Message,
    /// Retry key scoped to the sender (`<author or api>:<client_id>`); a second append with
    /// the same key returns the first message instead of storing a new one.
    pub idempotency_key: Option<String>,
    /// The webhook outbox entry of this message's `message.created` (set only when a webhook
    /// wants it and `Store::queues_webhook_events`): written in the same atomic step as the
    /// message, with the message as stored in the hole.
    pub webhook_event: Option<crate::wire::OpenEvent>,
}

/// A change to a stored message (`Store::change_message`): whether it changed it, or why not.
pub type MessageChange<'a> = &'a (dyn Fn(&mut Message) -> Result<bool> + Send + Sync);

/// The result of `append`.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    /// True when the idempotency key had been seen: `message` is the original.
    pub duplicate: bool,
    /// Set by `conversations::post`, not the store: the room was resolved or snoozed when this
    /// new message reached it (the inbound door reopens it). Read with the room, no extra trip.
    pub reopens: bool,
    /// The room's status as the append itself found it, where the store reads it in the same
    /// atomic step (Redis: the append script; `None` on memory, where the caller's read is
    /// current). Wins over the post path's cached conversation for `reopens`.
    pub status: Option<ConversationStatus>,
    /// A new message's JSON as the store wrote it (`None` for a duplicate): the post path's
    /// `message.created` carries this text as it is, rather than serializing the message again,
    /// and the author's connection frames its own copy from it (`ws::send`). Shared bytes.
    pub json: Option<axum::extract::ws::Utf8Bytes>,
}

/// The refusal of anything that would write to a closed conversation (the post path's, and the
/// Redis append script's own check).
pub fn closed() -> Error {
    Error::refused("closed", "the conversation is closed: it takes no more messages and keeps its status")
}

/// A room's position: its newest seq and the epoch its history belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    pub seq: u64,
    pub epoch: String,
}

/// The outcome of `Store::set_status` on a conversation that exists.
#[derive(Debug, Clone)]
pub struct StatusSet {
    /// The conversation as now stored.
    pub conversation: Conversation,
    /// Its status before the call.
    pub previous: ConversationStatus,
    /// False when `previous` was not one of those expected: nothing changed.
    pub applied: bool,
}

/// Which slice of history to read. Results are always in ascending seq order.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqRange {
    /// Only messages with seq > after; read forward from there.
    pub after: Option<u64>,
    /// Only messages with seq < before; without `after`, the newest `limit` of them.
    pub before: Option<u64>,
    pub limit: usize,
}

/// The answer to a retry (same `client_id`) whose original message left history, trimmed by
/// `redis.history_max_len` or retention: the same on both backends.
pub(crate) fn trimmed_original() -> Error {
    Error::Conflict("client_id was already used for a message that is no longer in the retained history".into())
}

/// What one `Store::trim_history` step removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trimmed {
    /// How many messages it removed (0: nothing in the room is old enough).
    pub removed: usize,
    /// The removed messages' attachments, as last stored. The seam for media deletion: media
    /// are URLs the sender hosts today, so nothing is deleted yet; once uploads are stored by
    /// us, the retention sweep (`conversations::retention`) deletes these objects. Only the
    /// step that actually removed a message reports its medias (two nodes sweeping the same
    /// room never both do).
    pub medias: Vec<Media>,
}

/// Where the memory store drops a message's webhook event inside its room lock, so the event
/// is queued atomically with the message. The webhook store implements it; declared here so
/// the store does not import the webhooks module above it.
pub trait EventOutbox: Send + Sync + std::fmt::Debug {
    /// Queues one outbox entry (webhook `Work` JSON). Synchronous: nothing to wait for.
    fn push_work(&self, json: &str) -> Result<()>;
}

/// How many conversations one step of `Store::count_conversations` reads.
pub const COUNT_PAGE: usize = 500;

/// Counts the conversations a paged finder yields, up to `cap`: asks `find(before, want)`
/// for `COUNT_PAGE` at a time, continuing below the last one. Also counts a contact's list.
pub async fn count_by_pages<F, Fut>(cap: usize, mut find: F) -> Result<usize>
where
    F: FnMut(Option<Uuid>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Conversation>>>,
{
    let (mut n, mut before) = (0, None);
    while n < cap {
        let want = (cap - n).min(COUNT_PAGE);
        let page = find(before, want).await?;
        n += page.len();
        match page.last() {
            Some(c) if page.len() == want => before = Some(c.id),
            _ => break,
        }
    }
    Ok(n.min(cap))
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the backend can serve requests (`/readyz`).
    async fn ping(&self) -> Result<()>;

    /// Creates or replaces a tenant and the API keys (as hashes) that resolve to it.
    async fn put_tenant(&self, tenant: &Tenant, key_hashes: &[String]) -> Result<()>;
    async fn tenant_by_key_hash(&self, hash: &str) -> Result<Option<Tenant>>;

    async fn create_conversation(&self, c: &Conversation) -> Result<()>;
    /// `None` also when the conversation belongs to another tenant.
    async fn get_conversation(&self, tenant: Uuid, id: Uuid) -> Result<Option<Conversation>>;
    /// The conversation for the post path (its status, timers and owner): from the node's
    /// [`RoomCache`] while the broker listens to the room. Its `last_seq` and `tm_update` may
    /// be behind (appends move them without a publication); like [`members`](Store::members),
    /// it may lag a change made on another node by the time its publication takes to arrive.
    async fn cached_conversation(&self, tenant: Uuid, id: Uuid) -> Result<Option<std::sync::Arc<Conversation>>> {
        Ok(self.get_conversation(tenant, id).await?.map(std::sync::Arc::new))
    }
    /// Newest first; `before` is the id of the last item of the previous page.
    async fn list_conversations(&self, tenant: Uuid, before: Option<Uuid>, limit: usize) -> Result<Vec<Conversation>>;
    /// `list_conversations` restricted by `filter` (every given filter must match), with the
    /// same order and cursor. Redis walks the most selective index of the filter; memory
    /// filters while walking the tenant's conversations.
    async fn find_conversations(
        &self,
        tenant: Uuid,
        filter: &ConversationFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Conversation>>;
    /// How many conversations match `filter`, counted up to `cap` (the answer is at most
    /// `cap`; `cap` itself means "at least that many"). By default it pages through
    /// `find_conversations` (`COUNT_PAGE` at a time: at most `cap` conversations read, and on
    /// Redis the index walks of those pages); Redis answers an owner-only filter with `ZCARD`
    /// of its owner indexes instead.
    async fn count_conversations(&self, tenant: Uuid, filter: &ConversationFilter, cap: usize) -> Result<usize> {
        count_by_pages(cap, |before, want| self.find_conversations(tenant, filter, before, want)).await
    }
    /// Sets the owning agent (`None` = unassigned) and `tm_update`; returns the conversation as
    /// now stored, or `None` when it is unknown or another tenant's.
    async fn set_owner(
        &self,
        tenant: Uuid,
        id: Uuid,
        agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>>;
    /// Replaces name, detail, metadata, timers and tm_update of an existing conversation (never
    /// the owner nor the status: those change only through `set_owner` and `set_status`).
    async fn update_conversation(&self, c: &Conversation) -> Result<bool>;
    /// Sets the lifecycle (status, `snoozed_until`, `tm_status`) and `tm_update`, atomically and
    /// only when the current status is one of `expect` (a compare-and-set: a timer firing and
    /// a reopening message, on any two nodes, never both win). `None`: unknown conversation.
    async fn set_status(
        &self,
        tenant: Uuid,
        id: Uuid,
        to: &Lifecycle,
        expect: &[ConversationStatus],
    ) -> Result<Option<StatusSet>>;
    /// Deletes the conversation with its participants and history.
    async fn delete_conversation(&self, tenant: Uuid, id: Uuid) -> Result<bool>;

    /// `Error::Conflict` if a participant with the same address type and target exists.
    async fn add_participant(&self, p: &Participant) -> Result<()>;
    async fn list_participants(&self, conversation: Uuid) -> Result<Vec<Participant>>;
    /// The room's participants for the post path: membership and addresses, from the node's
    /// [`RoomCache`] while the broker listens to the room (read markers may be stale there:
    /// read them with `list_participants`). May lag a change made on another node by the
    /// time its publication takes to arrive.
    async fn members(&self, conversation: Uuid) -> Result<MemberList> {
        Ok(self.list_participants(conversation).await?.into())
    }
    async fn remove_participant(&self, conversation: Uuid, id: Uuid) -> Result<bool>;
    /// Raises a participant's read marker (never lowers it).
    async fn mark_read(&self, conversation: Uuid, participant: Uuid, seq: u64) -> Result<()>;

    /// Assigns the next seq, stores the message and publishes its frame, atomically.
    async fn append(&self, draft: Draft) -> Result<Appended>;
    /// Appends several drafts with one outcome each, drafts of one room in the given order.
    /// A backend that can does it in one round of I/O (Redis: one pipeline per room), so a
    /// sender writing faster than a round trip is not held to one message per round trip.
    async fn append_many(&self, drafts: Vec<Draft>) -> Vec<Result<Appended>> {
        let mut out = Vec::with_capacity(drafts.len());
        for d in drafts {
            out.push(self.append(d).await);
        }
        out
    }
    async fn get_message(&self, conversation: Uuid, id: Uuid) -> Result<Option<Message>>;
    /// Applies `change` to a message as currently stored and stores the result, atomically
    /// with respect to every other change of it (memory: under the room lock; Redis: a
    /// compare-and-set, `change` re-run when another change landed in between). `change`
    /// answers whether it changed anything, or an error that refuses the change. Returns the
    /// message as now stored and whether it changed; `None` for an unknown (or trimmed) one.
    /// The seq never changes: history stays gap-free.
    async fn change_message(
        &self,
        conversation: Uuid,
        id: Uuid,
        change: MessageChange<'_>,
    ) -> Result<Option<(Message, bool)>>;
    async fn messages(&self, conversation: Uuid, range: SeqRange) -> Result<Vec<Message>>;
    /// `None` for an unknown room.
    async fn room_state(&self, conversation: Uuid) -> Result<Option<RoomState>>;
    /// A client resumes claiming it saw `seq` under an epoch (the room's current one, or the one
    /// it had before the room noticed a Redis restart), but the room is below it: the backend
    /// lost acknowledged writes. Moves the room to `seq` under a new
    /// epoch and returns the new state (`None` for an unknown room). The memory backend never
    /// goes back in time (a restart loses every room), so it only answers the state.
    async fn claimed_position(&self, conversation: Uuid, _seq: u64) -> Result<Option<RoomState>> {
        self.room_state(conversation).await
    }
    /// Whether `append` writes a draft's `webhook_event` into the webhook outbox atomically with
    /// the message (Redis on one server). When false the caller queues the event itself after
    /// the append (the memory backend: in-process; Redis Cluster: the outbox lives in another
    /// slot than the room, out of the script's reach).
    fn queues_webhook_events(&self) -> bool {
        false
    }
    /// Lowest seq still in history (1 unless trimmed; the room's seq + 1 when everything was
    /// trimmed); recovery below it is impossible.
    async fn first_retained_seq(&self, conversation: Uuid) -> Result<u64>;
    /// One bounded retention step: removes, oldest first, at most `max` messages of the room
    /// created before `before`, stopping at the first newer one (so what remains is still a
    /// gap-free run of seqs, none of them changed). Removes nothing else: the room, its seq and
    /// epoch stay. Idempotent: two nodes running it at once remove each message once. The
    /// caller repeats it while it removes `max`. An unknown room trims nothing.
    async fn trim_history(&self, conversation: Uuid, before: DateTime<Utc>, max: usize) -> Result<Trimmed>;
}
