//! Retention on Redis: removing a room's oldest messages in bounded steps.
//!
//! Owns `Store::trim_history` for this backend. A step reads the room's oldest `max` messages
//! (one `XRANGE … COUNT max`, as last changed), decides in Rust which leading run of them is
//! older than the cutoff (message times are JSON dates, which Lua cannot compare reliably), and
//! removes that run with one short script (`TRIM`), never a script over the whole history. The
//! script removes only entries still there, and answers which: two nodes sweeping the same room
//! remove (and report the medias of) each message once. The room's seq and epoch are not
//! touched; `first_retained_seq` reads the first entry left. Walking the tenant's rooms is the
//! sweep's job (`conversations::retention`), through the `tconvs` index, never a `SCAN`.

use super::RedisStore;
use crate::error::Result;
use crate::model::Message;
use crate::redis::ToRedisArgsDyn;
use crate::store::{SeqRange, Store, Trimmed};
use chrono::{DateTime, Utc};
use redis::Script;
use std::collections::HashSet;
use uuid::Uuid;

/// Removes the history entries up to a seq, at most `count` of them, with their id-index and
/// patch entries. KEYS: hist, ids, patch. ARGV: last seq to remove, count. Returns the ids of
/// the messages removed (none when another node got there first).
const TRIM: &str = r"
local e = redis.call('XRANGE', KEYS[1], '-', ARGV[1] .. '-1', 'COUNT', ARGV[2])
local out = {}
for i, x in ipairs(e) do
  redis.call('XDEL', KEYS[1], x[1])
  redis.call('HDEL', KEYS[2], x[2][2])
  redis.call('HDEL', KEYS[3], x[2][2])
  out[i] = x[2][2]
end
return out
";

pub(super) fn trim_script() -> Script {
    Script::new(TRIM)
}

impl RedisStore {
    /// `Store::trim_history`.
    pub(super) async fn trim(&self, conversation: Uuid, before: DateTime<Utc>, max: usize) -> Result<Trimmed> {
        if max == 0 {
            return Ok(Trimmed::default());
        }
        let oldest = self.messages(conversation, SeqRange { after: Some(0), before: None, limit: max }).await?;
        let old: Vec<&Message> = oldest.iter().take_while(|m| m.tm_create < before).collect();
        let Some(last) = old.last() else { return Ok(Trimmed::default()) };
        let keys = ["hist", "ids", "patch"].map(|p| self.keys.room(conversation, p));
        let args: [&dyn ToRedisArgsDyn; 2] = [&last.seq, &old.len()];
        let removed: Vec<String> = self.redis.script(&self.scripts.trim, &keys, &args).await?;
        let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
        let medias =
            old.iter().filter(|m| removed.contains(m.id.to_string().as_str())).flat_map(|m| m.medias.clone()).collect();
        Ok(Trimmed { removed: removed.len(), medias })
    }

    /// `Store::first_retained_seq` when the history stream is empty: everything up to the
    /// room's seq was trimmed (or nothing was ever written: seq 0).
    pub(super) async fn after_last(&self, conversation: Uuid) -> Result<u64> {
        let seq: Option<u64> =
            self.redis.query(redis::cmd("HGET").arg(self.keys.conversation(conversation)).arg("seq")).await?;
        Ok(seq.unwrap_or(0) + 1)
    }
}
