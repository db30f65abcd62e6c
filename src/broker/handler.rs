//! The one place where publications and events reach this node's connections.
//!
//! Both brokers call it — the memory broker for what the memory store put on the local bus,
//! the Redis broker for what arrived over pub/sub — so delivery cannot drift between backends.
//! It owns nothing but the registries it delivers to: the hub (room subscribers), the
//! watchers (tenant-wide conversation lists) and the node's room cache (memberships and
//! conversations), which it keeps current: changes (`Publication::Changed`) invalidate it, and
//! the brokers tell it which rooms they are certain to hear every change of (`room_live`,
//! `room_dead`, `all_offline`). An ended sign-in session (`session_ended`) closes its
//! connections here. Every call is synchronous and non-blocking:
//! fan-out is `try_send` into bounded queues, and a full queue closes that one connection.

use crate::hub::Hub;
use crate::store::RoomCache;
use crate::watch::Watchers;
use crate::wire::{Event, Publication};
use std::sync::Arc;
use uuid::Uuid;

/// Cheap to clone; every clone delivers to the same hub and watchers.
#[derive(Debug, Clone)]
pub struct Handler {
    hub: Hub,
    watchers: Watchers,
    members: Arc<RoomCache>,
}

impl Handler {
    pub fn new(hub: Hub, watchers: Watchers, members: Arc<RoomCache>) -> Handler {
        Handler { hub, watchers, members }
    }

    /// A room publication from any node: to every local subscriber of its room (a change of
    /// its membership or conversation: to the room cache instead).
    pub fn publication(&self, p: Publication) {
        if let Publication::Changed { room } = p {
            return self.members.invalidate(room);
        }
        self.hub.fanout(p);
    }

    /// Sign-in session `sid` ended (on any node): its connections on this node close (4001).
    pub fn session_ended(&self, sid: &str) {
        self.hub.sessions().end(sid);
    }

    /// The broker now hears every publication of `room`: its membership and conversation may
    /// be cached.
    pub fn room_live(&self, room: Uuid) {
        self.members.live(room);
    }

    /// The broker stopped listening to `room`.
    pub fn room_dead(&self, room: Uuid) {
        self.members.dead(room);
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
        self.members.clear();
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
