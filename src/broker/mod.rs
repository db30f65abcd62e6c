//! Cross-node delivery: publications and events from wherever they are written to the
//! connections of every node, and the outside-consumer event channel.
//!
//! Two brokers, one shape (Centrifugo's hub/broker split): the memory broker is an in-process
//! broker that drains the memory store's [`LocalBus`](crate::wire::LocalBus); the Redis broker
//! receives what the append script and other nodes PUBLISH. Both hand everything to the one
//! [`Handler`], which delivers to this node's hub and watchers — so after an append there is
//! exactly one road to a connection, whatever the backend. The broker also tells the transport
//! which rooms and tenants this node cares about (`room_interest`, `tenant_interest`), and
//! publishes event envelopes for outside consumers and the end of sign-in sessions (node-wide). It does not write history (the store
//! does, publishing atomically with the append) and holds no connection.

mod handler;
pub mod memory;
pub mod redis;

use crate::error::Result;
use crate::wire::Publication;
use async_trait::async_trait;
use uuid::Uuid;

pub use self::redis::RedisBroker;
pub use crate::wire::{Event, EventKind};
pub use handler::Handler;
pub use memory::MemoryBroker;

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Delivers a room publication that is not history (`Ephemeral`, `Assigned`, `Removed`) to every
    /// node's subscribers of its room, this one included.
    async fn publish(&self, publication: Publication) -> Result<()>;
    /// Publishes an event for outside consumers and in-process observers (`events`). Webhooks
    /// do not listen here: their events reach the durable outbox with the write.
    async fn publish_event(&self, event: &Event) -> Result<()>;
    /// `publish_event` for a batch, in order (per tenant, the order of `events`). A backend
    /// that can writes the batch in one round trip (Redis: one pipeline).
    async fn publish_events(&self, events: &[Event]) -> Result<()> {
        let mut result = Ok(());
        for e in events {
            result = result.and(self.publish_event(e).await);
        }
        result
    }
    /// Sign-in session `sid` ended: every node (this one included) closes its WebSockets
    /// with 4001.
    async fn end_session(&self, sid: &str) -> Result<()>;
    /// The hub's interest in `room` changed; the broker reconciles its subscriptions.
    fn room_interest(&self, room: Uuid);
    /// The node's conversation watchers of `tenant` changed (`crate::watch`): the broker
    /// starts or stops handing that tenant's events (from every node) to the handler, and
    /// tells the watchers once it does.
    fn tenant_interest(&self, tenant: Uuid);
    /// In-process observers of every event published by this node (tests, tools). A lossy
    /// broadcast: a receiver that falls behind misses events, so nothing durable reads it.
    fn events(&self) -> tokio::sync::broadcast::Receiver<Event>;
}
