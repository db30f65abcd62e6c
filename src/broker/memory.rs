//! The single-node broker: ephemeral frames go straight into the local hub, events into an
//! in-process broadcast channel (and to the node's conversation watchers). With one node there
//! is nobody else to tell.

use super::{Broker, Event};
use crate::error::Result;
use crate::hub::{Hub, Publication};
use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Debug)]
pub struct MemoryBroker {
    hub: Hub,
    events: broadcast::Sender<Event>,
}

impl MemoryBroker {
    pub fn new(hub: Hub) -> Self {
        MemoryBroker { hub, events: broadcast::channel(4096).0 }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish_ephemeral(&self, room: Uuid, frame: Utf8Bytes) -> Result<()> {
        self.hub.fanout(Publication { room, seq: 0, frame });
        Ok(())
    }

    async fn publish_event(&self, event: &Event) -> Result<()> {
        // No receiver is fine: nobody listens in-process yet.
        let _ = self.events.send(event.clone());
        self.hub.watchers().offer(event);
        Ok(())
    }

    fn room_interest(&self, _room: Uuid) {}

    fn tenant_interest(&self, tenant: Uuid) {
        // Every event of this single node passes through `publish_event`: live at once.
        self.hub.watchers().live(tenant, false);
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
