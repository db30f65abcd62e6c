//! Epochs and floors: how a room notices that Redis lost acknowledged writes (a restore from
//! an older snapshot, a failover, a restart) and starts a new epoch instead of handing a seq
//! out twice. The node keeps, per room, the highest seq it has seen (its floor); the scripts
//! compare the room's seq with it and the room's recorded Redis `run_id` with the current one.
//! The scripts themselves are in `scripts.rs`; the rules are in docs/redis.md.

use super::RedisStore;
use super::codec::reply_at;
use crate::error::Result;
use crate::store::{Appended, RoomState};
use uuid::Uuid;

/// A fresh random epoch name.
pub(super) fn new_epoch() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_string()
}

impl RedisStore {
    /// The highest seq this node has seen in `room` (0 when it never looked).
    pub(super) fn floor(&self, room: Uuid) -> u64 {
        self.floors.get(&room).map_or(0, |f| *f)
    }

    pub(super) fn raise_floor(&self, room: Uuid, seq: u64) {
        let mut f = self.floors.entry(room).or_insert(0);
        *f = (*f).max(seq);
    }

    /// Records the seq of a fresh append as seen.
    pub(super) fn observe(&self, r: Result<Appended>) -> Result<Appended> {
        if let Ok(a) = &r
            && !a.duplicate
        {
            self.raise_floor(a.message.conversation_id, a.message.seq);
        }
        r
    }

    /// The Redis `run_id` the scripts compare a room's with (empty: restarts are trusted, or a
    /// cluster; see `APPEND`).
    pub(super) async fn run_id(&self) -> Result<String> {
        if self.trust_restarts { Ok(String::new()) } else { self.redis.run_id().await }
    }

    /// Moves `room` to at least `floor`, under a new epoch if it was below or Redis restarted
    /// since it last wrote (see `ADVANCE`).
    pub(super) async fn advance(&self, room: Uuid, floor: u64) -> Result<Option<RoomState>> {
        let run = self.run_id().await?;
        let args: [&dyn crate::redis::ToRedisArgsDyn; 3] = [&floor, &new_epoch(), &run];
        let reply: Vec<redis::Value> =
            self.redis.script(&self.scripts.advance, &[self.keys.conversation(room)], &args).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        let (seq, epoch): (u64, String) = (reply_at(&reply, 0)?, reply_at(&reply, 1)?);
        if seq == floor && floor > 0 {
            tracing::warn!(%room, seq, %epoch, "room history went back in time (Redis lost writes): new epoch");
        }
        self.raise_floor(room, seq);
        Ok(Some(RoomState { seq, epoch }))
    }
}
