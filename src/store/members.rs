//! The node's cache of room memberships, so a post does not re-read the room's whole
//! participant list.
//!
//! Owns, per room, the participant list as last read and a generation number. It does not own
//! when a room may be cached — that is the broker's knowledge: a room is *live* here only while
//! this node is certain to hear of every change to it (the memory broker: while the hub has
//! subscribers of the room; the Redis broker: from the moment its room channel subscription is
//! confirmed until it is dropped or the pub/sub link is lost). Every participant change is
//! published by the store on the room's channel, atomically with the write
//! ([`Publication::Members`](crate::wire::Publication::Members)), and invalidates the entry on
//! every node; the writing node's store also invalidates its own entry synchronously before
//! the write returns, so a node reads its own writes.
//!
//! Why a generation per entry: a reader takes a *ticket* before it reads the store and may fill
//! the entry only if no invalidation happened since (the ticket is still current). A read that
//! raced a change can therefore never put an old list back.
//!
//! What is cached is membership and addresses: read markers (`last_read_seq`) are not kept
//! current here and must be read from the store.

use crate::error::Result;
use crate::model::Participant;
use dashmap::DashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// A room's participants as cached: shared, never copied per post.
pub type MemberList = Arc<[Participant]>;

#[derive(Debug)]
struct Entry {
    generation: u64,
    list: Option<MemberList>,
}

/// See the module docs. Shared (`Arc`) by the store, which reads and invalidates, and the
/// broker's handler, which marks rooms live and dead.
#[derive(Debug, Default)]
pub struct MemberCache {
    entries: DashMap<Uuid, Entry>,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl MemberCache {
    pub fn new() -> Arc<MemberCache> {
        Arc::new(MemberCache::default())
    }

    fn next(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The node now hears of every change to `room`: it may be cached (idempotent).
    pub fn live(&self, room: Uuid) {
        let generation = self.next();
        self.entries.entry(room).or_insert(Entry { generation, list: None });
    }

    /// The node no longer listens to `room`: forget it.
    pub fn dead(&self, room: Uuid) {
        self.entries.remove(&room);
    }

    /// The node may have missed changes to any room (the broker's link was lost).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// `room`'s membership changed: the next read goes to the store.
    pub fn invalidate(&self, room: Uuid) {
        if let Some(mut e) = self.entries.get_mut(&room) {
            e.generation = self.next();
            e.list = None;
        }
    }

    /// The cached list, or `None` (not cached, or not live).
    pub fn get(&self, room: Uuid) -> Option<MemberList> {
        let hit = self.entries.get(&room).and_then(|e| e.list.clone());
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Taken before reading the store: `None` when `room` is not live (do not cache).
    pub fn ticket(&self, room: Uuid) -> Option<u64> {
        self.entries.get(&room).map(|e| e.generation)
    }

    /// Caches `list` for `room` if nothing invalidated it since `ticket` was taken.
    pub fn fill(&self, room: Uuid, ticket: u64, list: MemberList) {
        if let Some(mut e) = self.entries.get_mut(&room)
            && e.generation == ticket
        {
            e.list = Some(list);
        }
    }

    /// The cached list, else `read` (the store) — cached when the room is live and nothing
    /// changed meanwhile.
    pub async fn read<F>(&self, room: Uuid, read: F) -> Result<MemberList>
    where
        F: std::future::Future<Output = Result<Vec<Participant>>>,
    {
        if let Some(list) = self.get(room) {
            return Ok(list);
        }
        let ticket = self.ticket(room);
        let list: MemberList = read.await?.into();
        if let Some(t) = ticket {
            self.fill(room, t, list.clone());
        }
        Ok(list)
    }

    /// Rooms that may be cached now.
    pub fn live_rooms(&self) -> usize {
        self.entries.len()
    }

    /// (hits, misses) since start.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> Vec<Participant> {
        (0..n)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "id": Uuid::now_v7(), "conversation_id": Uuid::nil(), "tenant_id": Uuid::nil(),
                    "address": {"type": "webchat", "target": format!("u{i}"), "name": ""}, "last_read_seq": 0,
                    "tm_create": "2026-01-01T00:00:00Z"
                }))
                .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn only_live_rooms_are_cached_and_invalidation_forces_a_read() {
        let cache = MemberCache::new();
        let room = Uuid::now_v7();
        // Not live: every read goes to the store.
        assert_eq!(cache.read(room, async { Ok(list(1)) }).await.unwrap().len(), 1);
        assert!(cache.get(room).is_none());
        cache.live(room);
        assert_eq!(cache.read(room, async { Ok(list(2)) }).await.unwrap().len(), 2);
        // Cached: the store is not asked (its answer would differ).
        assert_eq!(cache.read(room, async { Ok(list(5)) }).await.unwrap().len(), 2);
        cache.invalidate(room);
        assert_eq!(cache.read(room, async { Ok(list(3)) }).await.unwrap().len(), 3);
        cache.dead(room);
        assert!(cache.get(room).is_none());
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = MemberCache::new();
        let room = Uuid::now_v7();
        cache.live(room);
        let ticket = cache.ticket(room).unwrap();
        cache.invalidate(room); // a change landed while the store was being read
        cache.fill(room, ticket, list(1).into());
        assert!(cache.get(room).is_none());
        let ticket = cache.ticket(room).unwrap();
        cache.fill(room, ticket, list(1).into());
        assert!(cache.get(room).is_some());
        cache.clear();
        assert!(cache.get(room).is_none());
    }
}
