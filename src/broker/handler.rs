//! The one place where publications and events reach this node's connections.
//!
//! Both brokers call it — the memory broker for what the memory store put on the local bus,
//! the Redis broker for what arrived over pub/sub — so delivery cannot drift between backends.
//! It owns nothing but the two registries it delivers to: the hub (room subscribers) and the
//! watchers (tenant-wide conversation lists). Every call is synchronous and non-blocking:
//! fan-out is `try_send` into bounded queues, and a full queue closes that one connection.

use crate::hub::Hub;
use crate::watch::Watchers;
use crate::wire::{Event, Publication};
use uuid::Uuid;

/// Cheap to clone; every clone delivers to the same hub and watchers.
#[derive(Debug, Clone)]
pub struct Handler {
    hub: Hub,
    watchers: Watchers,
}

impl Handler {
    pub fn new(hub: Hub, watchers: Watchers) -> Handler {
        Handler { hub, watchers }
    }

    /// A room publication from any node: to every local subscriber of its room.
    pub fn publication(&self, p: Publication) {
        self.hub.fanout(p);
    }

    /// An event from any node: to the local watchers of its tenant, if it changes their list.
    pub fn event(&self, event: &Event) {
        self.watchers.offer(event);
    }

    /// This node now receives `tenant`'s events; `resync` after an outage (events were lost).
    pub fn tenant_live(&self, tenant: Uuid, resync: bool) {
        self.watchers.live(tenant, resync);
    }

    /// The node stopped receiving events (link lost): watchers wait for the next `live`.
    pub fn all_offline(&self) {
        self.watchers.all_offline();
    }

    /// The registries as they are now, for (re)subscribing.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }
}
