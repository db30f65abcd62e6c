//! Cross-node delivery and the outside-consumer event channel.
//!
//! The broker carries what is *not* history — typing, read receipts, presence — to every node
//! serving a room, tells the transport which rooms this node cares about (ref-counted by the
//! hub: subscribe on the first local subscriber, unsubscribe after the last), and publishes
//! event envelopes for outside consumers. While a node has conversation watchers of a tenant
//! (`crate::watch`), the broker also brings that tenant's events from every node to them.
//! Durable message publications are the store's job (published atomically with the append);
//! the broker only brings them in from the wire.

pub mod memory;
pub mod redis;

use crate::error::Result;
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use uuid::Uuid;

pub use self::redis::RedisBroker;
pub use memory::MemoryBroker;

/// An event as outside consumers see it: `{id, type, tenant_id, tm_create, data}`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: Uuid,
    pub tm_create: chrono::DateTime<chrono::Utc>,
    /// The conversation it concerns, for per-conversation ordering (absent for account events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<Uuid>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The `X-Request-Id` of the API request that caused it, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Event {
    pub fn new(kind: &str, tenant_id: Uuid, conversation_id: Option<Uuid>, data: impl Serialize) -> Event {
        Event {
            id: Uuid::now_v7(),
            kind: kind.to_string(),
            tenant_id,
            tm_create: crate::model::now(),
            conversation_id,
            data: serde_json::to_value(data).unwrap_or_default(),
            request_id: crate::logging::current_request_id().filter(|r| !r.is_empty()),
        }
    }
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Delivers an ephemeral frame to every node's subscribers of `room` (this one included).
    async fn publish_ephemeral(&self, room: Uuid, frame: Utf8Bytes) -> Result<()>;
    /// Publishes an event for outside consumers (and in-process listeners such as webhooks).
    async fn publish_event(&self, event: &Event) -> Result<()>;
    /// The hub's interest in `room` changed; the broker reconciles its subscriptions.
    fn room_interest(&self, room: Uuid);
    /// The node's conversation watchers of `tenant` changed (`crate::watch`): the broker
    /// starts or stops handing that tenant's events (from every node) to `Watchers::offer`,
    /// and calls `Watchers::live` once it does.
    fn tenant_interest(&self, tenant: Uuid);
    /// In-process listeners of every event published by this node.
    fn events(&self) -> tokio::sync::broadcast::Receiver<Event>;
}
