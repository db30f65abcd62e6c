//! Room presence that scales: join and leave announcements coalesced and rate-limited per
//! room, and turned off for big rooms.
//!
//! Announcing every join to every member makes N members joining cost N² frames: a thousand
//! joins are half a million presence frames, and beyond a thousand members that burst alone
//! overflowed queues and cut members with 4008. So, per room on this node:
//! - the first change after a quiet `ws.presence_interval_ms` goes out at once (a small room
//!   feels live); changes within the interval wait and leave together at its end, one frame
//!   per identity whose state really changed (a join and a leave in one window cancel);
//! - rooms with more than `ws.presence_max_members` local connections announce nothing, and
//!   their `subscribed` frame carries no `online` list: members ask for counts on demand
//!   (`presence_stats`).
//!
//! Owns the pending changes and the per-room window; it does not own publishing (the session
//! publishes what `admit` lets through, the flusher task what waited) nor who is in a room
//! (the hub). Node-local, like the hub: each node rate-limits its own members' changes.

use crate::wire::Publication;
use crate::wire::frames::ServerFrame;
use dashmap::DashMap;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use uuid::Uuid;

/// A presence change: an identity joined (`true`) or left (`false`) a room.
#[derive(Debug)]
struct Change {
    /// The first change of this identity in the window (the state before it was the opposite).
    first: bool,
    now: bool,
    /// A staff identity (agent, operator): announced only to connections that see the room's
    /// inside, never to end users (`Publication::Internal`).
    staff: bool,
}

#[derive(Debug)]
struct Window {
    /// When the room last announced something (`None`: not yet).
    sent: Option<Instant>,
    pending: FxHashMap<Arc<str>, Change>,
}

/// See the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PresenceGate {
    rooms: Arc<DashMap<Uuid, Window>>,
    interval: Duration,
    max_members: usize,
}

impl PresenceGate {
    pub fn new(interval: Duration, max_members: usize) -> PresenceGate {
        PresenceGate { rooms: Arc::default(), interval, max_members }
    }

    /// Whether a room of `connections` local connections announces presence at all.
    pub fn announces(&self, connections: usize) -> bool {
        connections <= self.max_members
    }

    /// `identity` joined or left `room` (of `connections` local connections now): `true` when
    /// the caller publishes the frame now; `false` when it waits for the window's end (or the
    /// room is too big to announce).
    /// A `staff` identity's change, when it waits, is later published for staff only.
    pub fn admit(&self, room: Uuid, connections: usize, identity: &Arc<str>, staff: bool, joined: bool) -> bool {
        self.admit_at(Instant::now(), room, connections, identity, staff, joined)
    }

    fn admit_at(
        &self,
        now: Instant,
        room: Uuid,
        connections: usize,
        identity: &Arc<str>,
        staff: bool,
        joined: bool,
    ) -> bool {
        if !self.announces(connections) {
            return false;
        }
        let mut w = self.rooms.entry(room).or_insert_with(|| Window { sent: None, pending: Default::default() });
        if w.pending.is_empty() && w.sent.is_none_or(|t| now.duration_since(t) >= self.interval) {
            w.sent = Some(now);
            return true;
        }
        match w.pending.get_mut(identity) {
            Some(c) => c.now = joined,
            None => {
                w.pending.insert(identity.clone(), Change { first: joined, now: joined, staff });
            }
        }
        false
    }

    /// The frames whose window is over, as publications; forgets rooms quiet for a window.
    pub fn due(&self) -> Vec<Publication> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Vec<Publication> {
        let mut out = Vec::new();
        self.rooms.retain(|room, w| {
            if w.sent.is_some_and(|t| now.duration_since(t) < self.interval) {
                return true;
            }
            if w.pending.is_empty() {
                return false; // quiet for a whole window: the next change goes out at once
            }
            for (identity, c) in w.pending.drain() {
                // An even number of changes (joined then left, left then joined) is no change.
                if c.first == c.now {
                    let state = if c.now { "joined" } else { "left" };
                    let frame = ServerFrame::Presence { conversation_id: *room, identity: &identity, state }.to_text();
                    out.push(match c.staff {
                        true => Publication::Internal { room: *room, frame },
                        false => Publication::Ephemeral { room: *room, frame },
                    });
                }
            }
            w.sent = Some(now);
            true
        });
        out
    }

    /// How often the flusher looks for windows that are over.
    pub fn tick(&self) -> Duration {
        (self.interval / 4).max(Duration::from_millis(10))
    }
}

/// Starts the node's presence flusher: publishes what waited, until shutdown.
pub fn start(state: &crate::app::AppState) {
    let (gate, broker, shutdown) = (state.presence.clone(), state.broker.clone(), state.shutdown.clone());
    state.tasks.spawn(async move {
        let mut tick = tokio::time::interval(gate.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            for p in gate.due() {
                if let Err(e) = broker.publish(p).await {
                    tracing::debug!(error = %e, "presence not published");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(ps: &[Publication]) -> Vec<String> {
        let mut v: Vec<String> = ps
            .iter()
            .map(|p| match p {
                Publication::Ephemeral { frame, .. } => {
                    let f: serde_json::Value = serde_json::from_str(frame).unwrap();
                    format!("{} {}", f["identity"].as_str().unwrap(), f["state"].as_str().unwrap())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_first_change_goes_at_once_then_a_window_coalesces() {
        let gate = PresenceGate::new(Duration::from_secs(1), 100);
        let room = Uuid::now_v7();
        let id = |s: &str| -> Arc<str> { s.into() };
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(gate.admit_at(at(0), room, 1, &id("ann"), false, true), "a quiet room announces at once");
        assert!(!gate.admit_at(at(10), room, 2, &id("bob"), false, true));
        assert!(!gate.admit_at(at(20), room, 3, &id("cat"), false, true));
        assert!(!gate.admit_at(at(30), room, 2, &id("cat"), false, false), "cat came and went inside the window");
        assert!(!gate.admit_at(at(40), room, 1, &id("ann"), false, false));
        assert!(gate.due_at(at(500)).is_empty(), "the window is not over");
        assert_eq!(states(&gate.due_at(at(1000))), vec!["ann left", "bob joined"]);
        // Changes keep waiting for the next window's end while the room is busy.
        assert!(!gate.admit_at(at(1100), room, 2, &id("dan"), false, true));
        assert_eq!(states(&gate.due_at(at(2000))), vec!["dan joined"]);
        // Quiet for a whole window: forgotten, and the next change is at once again.
        assert!(gate.due_at(at(3000)).is_empty());
        assert!(gate.admit_at(at(3001), room, 2, &id("eve"), false, true));
    }

    #[test]
    fn big_rooms_announce_nothing() {
        let gate = PresenceGate::new(Duration::from_secs(1), 10);
        let room = Uuid::now_v7();
        assert!(!gate.admit(room, 11, &"ann".into(), false, true));
        assert!(gate.due().is_empty());
        assert!(gate.announces(10) && !gate.announces(11));
    }
}
