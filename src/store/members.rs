//! The node's cache of what the post path reads of a room — its membership and its
//! conversation (status, timers, owner) — so a post re-reads neither.
//!
//! Owns, per room, the participant list and the conversation as last read, and a generation
//! number. It does not own when a room may be cached — that is the broker's knowledge: a room
//! is *live* here only while this node is certain to hear of every change to it (the memory
//! broker: while the hub has subscribers of the room; the Redis broker: from the moment its
//! room channel subscription is confirmed until it is dropped or the pub/sub link is lost).
//! Every change to a room's participants or conversation is published by the store on the
//! room's channel, atomically with the write
//! ([`Publication::Changed`](crate::wire::Publication::Changed)), and invalidates the entry —
//! both halves — on every node; the writing node's store also invalidates its own entry
//! synchronously before the write returns, so a node reads its own writes.
//!
//! Why a generation per entry: a reader takes a *ticket* before it reads the store and may fill
//! the entry only if no invalidation happened since (the ticket is still current). A read that
//! raced a change can therefore never put an old value back.
//!
//! Not kept current here: read markers (`last_read_seq`) and the conversation's `last_seq` and
//! `tm_update` (every append moves them without a publication); read those from the store.
//! A conversation that does not exist is not cached.

use crate::error::Result;
use crate::model::{Conversation, Participant};
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
    conversation: Option<Arc<Conversation>>,
}

/// See the module docs. Shared (`Arc`) by the store, which reads and invalidates, and the
/// broker's handler, which marks rooms live and dead.
#[derive(Debug, Default)]
pub struct RoomCache {
    entries: DashMap<Uuid, Entry>,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl RoomCache {
    pub fn new() -> Arc<RoomCache> {
        Arc::new(RoomCache::default())
    }

    fn next(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The node now hears of every change to `room`: it may be cached (idempotent).
    pub fn live(&self, room: Uuid) {
        let generation = self.next();
        self.entries.entry(room).or_insert(Entry { generation, list: None, conversation: None });
    }

    /// The node no longer listens to `room`: forget it.
    pub fn dead(&self, room: Uuid) {
        self.entries.remove(&room);
    }

    /// The node may have missed changes to any room (the broker's link was lost).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// `room`'s membership or conversation changed: the next reads of both go to the store.
    pub fn invalidate(&self, room: Uuid) {
        if let Some(mut e) = self.entries.get_mut(&room) {
            e.generation = self.next();
            e.list = None;
            e.conversation = None;
        }
    }

    /// The cached list, or `None` (not cached, or not live).
    pub fn get(&self, room: Uuid) -> Option<MemberList> {
        let hit = self.entries.get(&room).and_then(|e| e.list.clone());
        self.count(hit.is_some());
        hit
    }

    /// The cached conversation, or `None` (not cached, or not live).
    pub fn conversation(&self, room: Uuid) -> Option<Arc<Conversation>> {
        let hit = self.entries.get(&room).and_then(|e| e.conversation.clone());
        self.count(hit.is_some());
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

    /// Caches `conversation` for `room` if nothing invalidated it since `ticket` was taken.
    pub fn fill_conversation(&self, room: Uuid, ticket: u64, conversation: Arc<Conversation>) {
        if let Some(mut e) = self.entries.get_mut(&room)
            && e.generation == ticket
        {
            e.conversation = Some(conversation);
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

    /// The cached conversation, else `read` (the store) — cached, when it exists, on the
    /// terms of [`read`](Self::read).
    pub async fn read_conversation<F>(&self, room: Uuid, read: F) -> Result<Option<Arc<Conversation>>>
    where
        F: std::future::Future<Output = Result<Option<Conversation>>>,
    {
        if let Some(c) = self.conversation(room) {
            return Ok(Some(c));
        }
        let ticket = self.ticket(room);
        let Some(c) = read.await? else { return Ok(None) };
        let c = Arc::new(c);
        if let Some(t) = ticket {
            self.fill_conversation(room, t, c.clone());
        }
        Ok(Some(c))
    }

    /// Rooms that may be cached now.
    pub fn live_rooms(&self) -> usize {
        self.entries.len()
    }

    /// (hits, misses) since start, memberships and conversations together.
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
        let cache = RoomCache::new();
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
        let cache = RoomCache::new();
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

    fn conversation(name: &str) -> Conversation {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(), "tenant_id": Uuid::nil(), "name": name, "detail": "", "metadata": {},
            "last_seq": 0, "tm_create": "2026-01-01T00:00:00Z", "tm_update": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_conversation_is_cached_beside_the_membership_and_dropped_with_it() {
        let cache = RoomCache::new();
        let room = Uuid::now_v7();
        let read = |name: &'static str| async move { Ok(Some(conversation(name))) };
        // Not live: read through.
        assert_eq!(cache.read_conversation(room, read("a")).await.unwrap().unwrap().name, "a");
        cache.live(room);
        assert_eq!(cache.read_conversation(room, read("b")).await.unwrap().unwrap().name, "b");
        assert_eq!(cache.read_conversation(room, read("c")).await.unwrap().unwrap().name, "b");
        cache.read(room, async { Ok(list(2)) }).await.unwrap();
        // A change to either half drops both.
        cache.invalidate(room);
        assert!(cache.get(room).is_none());
        assert_eq!(cache.read_conversation(room, read("d")).await.unwrap().unwrap().name, "d");
        // A conversation that does not exist is not cached: its creation publishes nothing.
        cache.invalidate(room);
        assert!(cache.read_conversation(room, async { Ok(None) }).await.unwrap().is_none());
        assert_eq!(cache.read_conversation(room, read("e")).await.unwrap().unwrap().name, "e");
        // A read that raced an invalidation is not kept.
        cache.invalidate(room);
        let ticket = cache.ticket(room).unwrap();
        cache.invalidate(room);
        cache.fill_conversation(room, ticket, Arc::new(conversation("old")));
        assert!(cache.conversation(room).is_none());
    }
}
