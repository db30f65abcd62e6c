//! Conversation status on Redis: the lifecycle fields beside the conversation document.
//!
//! Like the owner (see `owners`), the status lives in its own fields of the conversation hash
//! (`status`: the bare name, for the compare-and-set; `st`: the lifecycle JSON), never in `doc`,
//! so `update_conversation` cannot write back a status it read before a concurrent change, and
//! a conversation stored before statuses existed (no `status` field) reads as `open`.

use super::{RedisStore, encode};
use crate::error::Result;
use crate::model::{ConversationStatus, Lifecycle};
use crate::redis::ToRedisArgsDyn;
use crate::store::StatusSet;
use uuid::Uuid;

/// KEYS: conv, ix, [tfind]. ARGV: tenant, new status, lifecycle JSON, conversation id (32 hex
/// digits), the `Changed` publication (`PUBLISH` or `SPUBLISH`, channel, payload: see
/// `scripts::ADD_PARTICIPANT`), then the statuses it may change from. Returns `{}` for an
/// unknown (or another tenant's) conversation, else `{applied (0/1), the status before}`. The
/// filter index entry `s:<status>` follows in the same step (`find`; the tenant key on one
/// server only), and so does the publication that drops the room from every node's cache.
pub(super) const SET_STATUS: &str = r"
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return {} end
local cur = redis.call('HGET', KEYS[1], 'status') or 'open'
for i = 8, #ARGV do
  if ARGV[i] == cur then
    redis.call('HSET', KEYS[1], 'status', ARGV[2], 'st', ARGV[3])
    reindex(KEYS[2], KEYS[3], ARGV[4], {'st', 's:' .. ARGV[2]})
    redis.call(ARGV[5], ARGV[6], ARGV[7])
    return {1, cur}
  end
end
return {0, cur}
";

impl RedisStore {
    pub(super) async fn write_status(
        &self,
        tenant: Uuid,
        id: Uuid,
        to: &Lifecycle,
        expect: &[ConversationStatus],
    ) -> Result<Option<StatusSet>> {
        let (t, doc, status, member) = (tenant.to_string(), encode(to)?, to.status.as_str(), Self::member(id));
        let [publish, channel, payload] = self.changed_publication(id);
        let mut args: Vec<&dyn ToRedisArgsDyn> = vec![&t, &status, &doc, &member, &publish, &channel, &payload];
        let names: Vec<&str> = expect.iter().map(|s| s.as_str()).collect();
        args.extend(names.iter().map(|n| n as &dyn ToRedisArgsDyn));
        let mut keys = self.indexing_keys(tenant, id, &[]);
        keys.insert(0, self.keys.conversation(id));
        let out = self.redis.script::<Vec<String>>(&self.scripts.set_status, &keys, &args).await;
        self.rooms.invalidate(id);
        let out = out?;
        let [applied, previous] = out.as_slice() else { return Ok(None) };
        let (applied, previous) = (applied == "1", ConversationStatus::parse(previous).unwrap_or_default());
        if applied {
            self.settle_find(tenant, id).await?;
        }
        let Some(conversation) = self.read_conversation(id).await? else { return Ok(None) };
        Ok(Some(StatusSet { conversation, previous, applied }))
    }
}
