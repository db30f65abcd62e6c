//! Changing a stored message on Redis: edits, tombstones and delivery reports.
//!
//! History entries are immutable stream entries; a message as last changed lives in the room's
//! `patch` hash, which every read prefers (`GET_MESSAGE`, `READ_RANGE`). A change is a
//! compare-and-set (`UPDATE_MESSAGE`): read the message, apply the change in Rust (the rules
//! stay in `conversations` and `model`), write it only if nobody changed it meanwhile, else
//! re-read and re-apply. The seq is never touched, so history stays gap-free.

use super::{RedisStore, decode, encode};
use crate::error::{Error, Result};
use crate::model::Message;
use crate::redis::ToRedisArgsDyn;
use crate::store::MessageChange;
use uuid::Uuid;

/// Compare-and-set rounds before a change gives up (each loses only to another change of the
/// same message that landed in between).
const CAS_ROUNDS: usize = 16;

impl RedisStore {
    /// `Store::change_message` (and `ChannelStore::update_delivery`, through it).
    pub(super) async fn revise(
        &self,
        conversation: Uuid,
        id: Uuid,
        change: MessageChange<'_>,
    ) -> Result<Option<(Message, bool)>> {
        let keys = ["ids", "hist", "patch"].map(|p| self.keys.room(conversation, p));
        for _ in 0..CAS_ROUNDS {
            let Some(current) = self.message_doc(conversation, id).await? else { return Ok(None) };
            let mut m: Message = decode(&current)?;
            if !change(&mut m)? {
                return Ok(Some((m, false)));
            }
            let args: [&dyn ToRedisArgsDyn; 3] = [&id.to_string(), &current, &encode(&m)?];
            match self.redis.script::<i64>(&self.scripts.update_message, &keys, &args).await? {
                1 => return Ok(Some((m, true))),
                0 => continue,
                _ => return Ok(None),
            }
        }
        Err(Error::unavailable("message is being changed concurrently; retry"))
    }
}
