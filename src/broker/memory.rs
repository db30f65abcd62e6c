//! The single-node broker: an in-process broker in the manner of Centrifugo's
//! `broker_memory`.
//!
//! The memory store puts each publication on the [`LocalBus`] inside its room lock (so a
//! room's publications keep seq order); one task per bus shard drains it into the one
//! [`Handler`], exactly as the Redis broker's subscriber does with what arrives over pub/sub.
//! Ephemeral frames take the same bus, so they keep their place among a room's messages.
//! Events go to an in-process broadcast (observers only: webhooks do not read it) and to the handler. With one
//! node there is nobody else to tell.

use super::{Broker, Event, Handler};
use crate::error::Result;
use crate::wire::{LocalBus, Publication};
use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

#[derive(Debug)]
pub struct MemoryBroker {
    bus: LocalBus,
    handler: Handler,
    events: broadcast::Sender<Event>,
}

impl MemoryBroker {
    /// Starts draining `receivers` (the other ends of `bus`, which the memory store
    /// publishes to) into `handler`; the tasks end when every sender is gone.
    pub fn start(bus: LocalBus, receivers: Vec<mpsc::UnboundedReceiver<Publication>>, handler: Handler) -> Self {
        for mut rx in receivers {
            let handler = handler.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(64);
                while rx.recv_many(&mut batch, 64).await > 0 {
                    for p in batch.drain(..) {
                        handler.publication(p);
                    }
                }
            });
        }
        MemoryBroker { bus, handler, events: broadcast::channel(4096).0 }
    }
}

impl MemoryBroker {
    /// An event to the in-process observers and the handler (the watchers).
    fn deliver(&self, event: &Event) {
        // No receiver is fine: nobody may listen in-process. Then the event is not even
        // cloned.
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event.clone());
        }
        self.handler.event(event);
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, publication: Publication) -> Result<()> {
        self.bus.publish(publication);
        Ok(())
    }

    async fn publish_event(&self, event: &Event) -> Result<()> {
        self.deliver(event);
        Ok(())
    }

    async fn publish_events(&self, events: &[Event]) -> Result<()> {
        // One await for the batch, not one boxed future per event.
        events.iter().for_each(|e| self.deliver(e));
        Ok(())
    }

    async fn end_session(&self, sid: &str) -> Result<()> {
        self.handler.session_ended(sid);
        Ok(())
    }

    fn room_interest(&self, room: Uuid) {
        // One node: every change passes through this process, so a room is live (cacheable)
        // exactly while the hub has subscribers of it; that bounds the cache.
        if self.handler.hub().has_room(room) {
            self.handler.room_live(room);
        } else {
            self.handler.room_dead(room);
        }
    }

    fn tenant_interest(&self, tenant: Uuid) {
        // Every event of this single node passes through `publish_event`: live at once.
        self.handler.tenant_live(tenant, false);
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}
