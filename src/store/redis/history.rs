//! Reads of a Redis room: its messages (history as last patched), its position (seq and
//! epoch, moving the room to a new epoch when Redis lost writes this node saw) and the
//! conversation document with the fields kept beside it.
//!
//! Owns only reads; every write is a script in `scripts` run by its own file (`append`,
//! `revise`, `owners`, `status`, …). Kept apart from `RedisStore`'s trait impl so that file
//! stays the map of which operation lives where.

use super::codec::{decode, seq_of_stream_id};
use super::{RedisStore, RoomState, SeqRange};
use crate::error::Result;
use crate::model::{Conversation, Message};
use chrono::DateTime;
use redis::cmd;
use uuid::Uuid;

impl RedisStore {
    pub(super) async fn read_messages(&self, conversation: Uuid, range: SeqRange) -> Result<Vec<Message>> {
        let upper = range.before.map(|b| b.saturating_sub(1));
        if range.limit == 0 || upper == Some(0) || matches!((range.after, upper), (Some(a), Some(u)) if a >= u) {
            return Ok(Vec::new());
        }
        let keys = [self.keys.room(conversation, "hist"), self.keys.room(conversation, "patch")];
        let hi = upper.map_or_else(|| "+".to_string(), |u| u.to_string());
        let docs: Vec<String> = match range.after {
            Some(a) => {
                let args: [&dyn crate::redis::ToRedisArgsDyn; 4] = [&"XRANGE", &(a + 1), &hi, &range.limit];
                self.redis.script(&self.scripts.read_range, &keys, &args).await?
            }
            None => {
                let args: [&dyn crate::redis::ToRedisArgsDyn; 4] = [&"XREVRANGE", &hi, &"-", &range.limit];
                let mut newest: Vec<String> = self.redis.script(&self.scripts.read_range, &keys, &args).await?;
                newest.reverse();
                newest
            }
        };
        docs.iter().map(|d| decode(d)).collect()
    }

    pub(super) async fn read_room_state(&self, conversation: Uuid) -> Result<Option<RoomState>> {
        let key = self.keys.conversation(conversation);
        let (seq, epoch, run): (Option<u64>, Option<String>, Option<String>) =
            self.redis.query(cmd("HMGET").arg(key).arg("seq").arg("epoch").arg("run")).await?;
        let (Some(seq), Some(epoch)) = (seq, epoch) else { return Ok(None) };
        let floor = self.floor(conversation);
        let current = self.run_id().await?;
        let restarted = !current.is_empty() && run.is_some_and(|r| r != current);
        if seq < floor || restarted {
            // This node saw a higher seq (Redis lost writes), or Redis restarted since the
            // room last wrote (it may have): start a new epoch now.
            return self.advance(conversation, floor).await;
        }
        self.raise_floor(conversation, seq);
        Ok(Some(RoomState { seq, epoch }))
    }

    pub(super) async fn read_first_retained_seq(&self, conversation: Uuid) -> Result<u64> {
        let first: Vec<(String, Vec<String>)> = self
            .redis
            .query(cmd("XRANGE").arg(self.keys.room(conversation, "hist")).arg("-").arg("+").arg("COUNT").arg(1))
            .await?;
        match first.first() {
            Some((id, _)) => seq_of_stream_id(id),
            // Before the first message (seq 0), or after retention removed every message.
            None => self.after_last(conversation).await,
        }
    }

    /// A message's JSON as last updated.
    pub(super) async fn message_doc(&self, conversation: Uuid, id: Uuid) -> Result<Option<String>> {
        let keys = ["ids", "hist", "patch"].map(|p| self.keys.room(conversation, p));
        self.redis.script(&self.scripts.get_message, &keys, &[&id.to_string()]).await
    }

    pub(super) async fn read_conversation(&self, id: Uuid) -> Result<Option<Conversation>> {
        let key = self.keys.conversation(id);
        type Fields = (Option<String>, Option<u64>, Option<String>, Option<i64>, Option<String>);
        let (doc, seq, owner, owner_ms, status): Fields =
            self.redis.query(cmd("HMGET").arg(key).arg("doc").arg("seq").arg("oid").arg("otm").arg("st")).await?;
        let Some(doc) = doc else { return Ok(None) };
        let mut c: Conversation = decode(&doc)?;
        c.last_seq = seq.unwrap_or(0);
        // The owner lives beside the document (see `owners`), so `update_conversation` never
        // writes back an owner it read before a concurrent assignment.
        c.set_owner(owner.filter(|o| !o.is_empty()));
        if let Some(t) = owner_ms.and_then(DateTime::from_timestamp_millis) {
            c.tm_update = c.tm_update.max(t);
        }
        // So does the status (see `status`).
        if let Some(st) = status {
            c.lifecycle = decode(&st)?;
            c.tm_update = c.tm_update.max(c.lifecycle.tm_status.unwrap_or(c.tm_update));
        }
        Ok(Some(c))
    }
}
