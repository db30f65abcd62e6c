//! The node-local hub: which WebSocket connections on *this* node watch which rooms.
//!
//! Rooms live in a `DashMap` keyed (and therefore sharded) by room id. A publication is
//! serialized once by whoever produced it and handed to every local subscriber as a shared
//! `Arc`, through each connection's bounded queue with `try_send`: fan-out never awaits, never
//! holds a lock across `.await`, and a full queue marks that one connection as a slow consumer
//! instead of slowing the room. The hub owns no durable state and knows nothing about other
//! nodes: every publication, local or remote, reaches it through the broker's one handler.
//! Tenant-wide watchers are not here but in `crate::watch`; which connections belong to which
//! sign-in session is [`sessions`] (so an ended session closes them).

pub use crate::conn::{ConnCtl, ConnId, Inbox, Outbox};
pub use crate::wire::Publication;

pub mod presence;
pub mod sessions;

pub use sessions::SessionConns;

use crate::conn::queue::Refused;
use dashmap::DashMap;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// One connection's membership in one room.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub conn: ConnId,
    pub tx: Outbox,
    pub ctl: Arc<ConnCtl>,
    /// The holder's identity, for presence.
    pub identity: Arc<str>,
    /// Staff (agent, operator tokens): its identity is listed `online` only to staff.
    pub staff: bool,
}

/// A room's local subscribers, indexed so that a join or a leave costs O(1) whatever the
/// room's size (a 10,000-member room is joined 10,000 times).
#[derive(Debug, Default)]
struct Room {
    subs: Vec<Subscriber>,
    /// Connection → its index in `subs`.
    at: FxHashMap<ConnId, usize>,
    /// Identity → how many of its connections are in `subs`.
    identities: FxHashMap<Arc<str>, u32>,
    /// The identities above that are staff (see `Subscriber::staff`).
    staff: rustc_hash::FxHashSet<Arc<str>>,
}

/// What changed when a connection joined a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// First local subscriber: the broker must start listening for this room.
    pub first_in_room: bool,
    /// First local connection of this identity in the room: announce presence.
    pub first_for_identity: bool,
}

/// What changed when a connection left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub last_in_room: bool,
    pub last_for_identity: bool,
}

/// Cheap to clone; every clone is the same hub.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    rooms: DashMap<Uuid, Room>,
    next_conn: AtomicU64,
    fanout_drops: AtomicU64,
    sessions: SessionConns,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// The node's connections by sign-in session.
    pub fn sessions(&self) -> &SessionConns {
        &self.inner.sessions
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds `sub` to `room` (idempotent per connection).
    pub fn subscribe(&self, room: Uuid, sub: Subscriber) -> Joined {
        let mut r = self.inner.rooms.entry(room).or_default();
        if r.at.contains_key(&sub.conn) {
            return Joined { first_in_room: false, first_for_identity: false };
        }
        let first_in_room = r.subs.is_empty();
        let count = r.identities.entry(sub.identity.clone()).or_insert(0);
        *count += 1;
        let first_for_identity = *count == 1;
        if sub.staff {
            r.staff.insert(sub.identity.clone());
        }
        let i = r.subs.len();
        r.at.insert(sub.conn, i);
        r.subs.push(sub);
        Joined { first_in_room, first_for_identity }
    }

    /// Removes connection `conn` from `room`; `None` if it was not there.
    pub fn unsubscribe(&self, room: Uuid, conn: ConnId) -> Option<Left> {
        let mut left = None;
        self.inner.rooms.remove_if_mut(&room, |_, r| {
            if let Some(i) = r.at.remove(&conn) {
                let gone = r.subs.swap_remove(i);
                if let Some(moved) = r.subs.get(i) {
                    r.at.insert(moved.conn, i);
                }
                let last_for_identity = match r.identities.get_mut(&gone.identity) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    _ => {
                        r.identities.remove(&gone.identity);
                        r.staff.remove(&gone.identity);
                        true
                    }
                };
                left = Some(Left { last_in_room: r.subs.is_empty(), last_for_identity });
            }
            r.subs.is_empty()
        });
        left
    }

    /// Hands `publication` to every local subscriber of its room; returns how many took it.
    /// A subscriber whose queue is full is told to close as a slow consumer.
    pub fn fanout(&self, publication: Publication) -> usize {
        let Some(room) = publication.room().and_then(|r| self.inner.rooms.get(&r)) else { return 0 };
        let shared = Arc::new(publication);
        let mut n = 0;
        for s in &room.subs {
            match s.tx.try_send(shared.clone()) {
                Ok(()) => n += 1,
                Err(Refused::Full) => {
                    self.inner.fanout_drops.fetch_add(1, Ordering::Relaxed);
                    s.ctl.kill(crate::wire::close::SLOW_CONSUMER);
                }
                Err(Refused::Closed) => {}
            }
        }
        n
    }

    /// Identities with at least one connection in `room` on this node; staff identities only
    /// when `with_staff` (an end user never learns them).
    pub fn online(&self, room: Uuid, with_staff: bool) -> Vec<String> {
        let mut ids: Vec<String> = match self.inner.rooms.get(&room) {
            Some(r) => {
                r.identities.keys().filter(|i| with_staff || !r.staff.contains(*i)).map(|i| i.to_string()).collect()
            }
            None => Vec::new(),
        };
        ids.sort();
        ids
    }

    /// `(connections, identities)` in `room` on this node: presence counts on demand.
    pub fn room_size(&self, room: Uuid) -> (usize, usize) {
        self.inner.rooms.get(&room).map_or((0, 0), |r| (r.subs.len(), r.identities.len()))
    }

    /// Whether any local connection watches `room` (the broker's subscription test).
    pub fn has_room(&self, room: Uuid) -> bool {
        self.inner.rooms.contains_key(&room)
    }

    /// Rooms with local subscribers.
    pub fn rooms(&self) -> Vec<Uuid> {
        self.inner.rooms.iter().map(|r| *r.key()).collect()
    }

    pub fn room_count(&self) -> usize {
        self.inner.rooms.len()
    }

    /// Room subscriptions held by local connections (one connection in three rooms counts 3).
    pub fn subscription_count(&self) -> usize {
        self.inner.rooms.iter().map(|r| r.subs.len()).sum()
    }

    /// Publications refused because a subscriber's queue was full.
    pub fn fanout_drops(&self) -> u64 {
        self.inner.fanout_drops.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(hub: &Hub, identity: &str, cap: usize) -> (Subscriber, Inbox) {
        let (tx, rx) = crate::conn::outbox(cap);
        (
            Subscriber {
                conn: hub.next_conn_id(),
                tx,
                ctl: Arc::new(ConnCtl::default()),
                identity: identity.into(),
                staff: false,
            },
            rx,
        )
    }

    fn publication(room: Uuid, seq: u64) -> Publication {
        Publication::Message { room, seq, frame: format!("{{\"seq\":{seq}}}").into(), internal: false }
    }

    #[test]
    fn join_leave_reports_room_and_identity_edges() {
        let hub = Hub::new();
        let room = Uuid::now_v7();
        let (a1, _r1) = sub(&hub, "alice", 4);
        let (a2, _r2) = sub(&hub, "alice", 4);
        assert_eq!(hub.subscribe(room, a1.clone()), Joined { first_in_room: true, first_for_identity: true });
        assert_eq!(hub.subscribe(room, a2.clone()), Joined { first_in_room: false, first_for_identity: false });
        assert_eq!(hub.online(room, true), vec!["alice".to_string()]);
        assert_eq!(hub.room_size(room), (2, 1));
        assert_eq!(hub.unsubscribe(room, a1.conn), Some(Left { last_in_room: false, last_for_identity: false }));
        assert_eq!(hub.unsubscribe(room, a2.conn), Some(Left { last_in_room: true, last_for_identity: true }));
        assert!(!hub.has_room(room));
        assert_eq!(hub.unsubscribe(room, a2.conn), None);
    }

    #[test]
    fn leaving_from_the_middle_keeps_the_index_and_the_counts_right() {
        let hub = Hub::new();
        let room = Uuid::now_v7();
        let subs: Vec<_> = (0..5).map(|i| sub(&hub, if i % 2 == 0 { "even" } else { "odd" }, 4)).collect();
        for (s, _) in &subs {
            hub.subscribe(room, s.clone());
        }
        assert_eq!(hub.room_size(room), (5, 2));
        // Removing index 1 moves the last subscriber into its place; it must still be found.
        assert_eq!(hub.unsubscribe(room, subs[1].0.conn), Some(Left { last_in_room: false, last_for_identity: false }));
        assert_eq!(hub.unsubscribe(room, subs[4].0.conn), Some(Left { last_in_room: false, last_for_identity: false }));
        assert_eq!(hub.unsubscribe(room, subs[3].0.conn), Some(Left { last_in_room: false, last_for_identity: true }));
        assert_eq!(hub.online(room, true), vec!["even".to_string()]);
        assert_eq!(hub.unsubscribe(room, subs[0].0.conn), Some(Left { last_in_room: false, last_for_identity: false }));
        assert_eq!(hub.unsubscribe(room, subs[2].0.conn), Some(Left { last_in_room: true, last_for_identity: true }));
        assert_eq!(hub.room_size(room), (0, 0));
    }

    #[test]
    fn fanout_shares_one_frame_and_kills_only_the_full_queue() {
        let hub = Hub::new();
        let room = Uuid::now_v7();
        let (fast, mut fast_rx) = sub(&hub, "fast", 8);
        let (slow, _slow_rx) = sub(&hub, "slow", 1);
        hub.subscribe(room, fast.clone());
        hub.subscribe(room, slow.clone());
        assert_eq!(hub.fanout(publication(room, 1)), 2);
        assert_eq!(hub.fanout(publication(room, 2)), 1);
        assert_eq!(slow.ctl.killed(), Some(crate::wire::close::SLOW_CONSUMER));
        assert_eq!(fast.ctl.killed(), None);
        let a = fast_rx.try_recv().unwrap();
        let b = fast_rx.try_recv().unwrap();
        assert_eq!((&*a, &*b), (&publication(room, 1), &publication(room, 2)));
        assert_eq!(hub.fanout_drops(), 1);
    }
}
