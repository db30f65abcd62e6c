//! Conversation ownership on Redis: the owner fields of a conversation and the per-owner
//! indexes that `GET /v1.0/conversations?owner_id=…` pages through.
//!
//! Why indexes rather than a filtered scan of `tconvs`: an agent typically owns a handful of a
//! tenant's many conversations, so a scan would read every conversation document to fill one
//! page. Each owner (every agent, plus "unassigned") gets a ZSET shaped like `tconvs` (ids at
//! score 0, lexicographic = creation order), so a page is one `ZREVRANGEBYLEX` per index and
//! the cursor stays the id of the last conversation returned.
//!
//! The owner itself lives in the conversation hash (`oid`, `otm`, `over`: room slot) while the
//! indexes live in the tenant slot, so on a cluster no single script can change both. The
//! conversation hash is the truth; the indexes follow it, version-guarded:
//! 1. `SET_OWNER` (room slot) writes the owner and bumps the ownership version `over`;
//! 2. `SETTLE` (tenant slot) moves the id from the index recorded in `towner` to the new
//!    owner's index, only if its version is newer than the recorded one — so two racing
//!    assignments leave the indexes matching whichever one won in step 1.
//!
//! Reads filter every listed conversation by its actual owner, so an index that lags (a node
//! died between the two steps) never shows a conversation to the wrong agent; repeating the
//! assignment repairs it. Conversations created before ownership existed enter the indexes at
//! their first assignment.

use super::{RedisStore, is_stale};
use crate::error::{Error, Result};
use crate::model::Conversation;
use crate::redis::ToRedisArgsDyn;
use crate::store::{ConversationFilter, OwnerFilter, count_by_pages};
use chrono::{DateTime, Utc};
use redis::{Script, cmd};
use uuid::Uuid;

/// KEYS: conv. ARGV: tenant, agent (empty = unassigned), ms of the change, then the `Changed`
/// publication (see `scripts::ADD_PARTICIPANT`: every node's cache drops the room).
/// Returns the new ownership version, or 0 for an unknown (or another tenant's) conversation.
const SET_OWNER: &str = r"
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'oid', ARGV[2], 'otm', ARGV[3])
redis.call(ARGV[4], ARGV[5], ARGV[6])
return redis.call('HINCRBY', KEYS[1], 'over', 1)
";

/// Moves a conversation between owner indexes, if `version` is newer than the recorded one.
/// KEYS: towner, index of the recorded owner (any tenant index when none), new owner's index.
/// ARGV: conversation, the `towner` value read before (empty = none), version, agent.
/// Returns 1 moved, 0 not newer than recorded (nothing to do), -1 `towner` changed since read
/// to an older version (read again: the recorded owner's index is another key now).
const SETTLE: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= '' and tonumber(ARGV[3]) <= tonumber(string.match(cur, '^(%d+)')) then return 0 end
if cur ~= ARGV[2] then return -1 end
if cur ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. ARGV[4])
return 1
";

/// Drops a conversation from every tenant index. KEYS: towner, recorded owner's index, tconvs.
/// ARGV: conversation, the `towner` value read before. Returns 1, or -1 if `towner` changed.
const UNINDEX: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return -1 end
if cur ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
";

/// Compare-and-set rounds on `towner`. A round is lost only to a change of the same entry
/// that is still older than ours (newer ones end the race at once), so this is plenty.
const CAS_ROUNDS: usize = 64;

#[derive(Debug)]
pub struct OwnerScripts {
    set_owner: Script,
    settle: Script,
    unindex: Script,
}

impl OwnerScripts {
    pub fn new() -> OwnerScripts {
        OwnerScripts { set_owner: Script::new(SET_OWNER), settle: Script::new(SETTLE), unindex: Script::new(UNINDEX) }
    }
}

/// The agent recorded in a `towner` value (`<version>:<agent>`), `None` when unassigned.
fn recorded_owner(value: &str) -> Option<&str> {
    value.split_once(':').map(|(_, a)| a).filter(|a| !a.is_empty())
}

impl RedisStore {
    fn owner_index(&self, tenant: Uuid, agent: Option<&str>) -> String {
        match agent {
            Some(a) => self.keys.owned_conversations(tenant, a),
            None => self.keys.unowned_conversations(tenant),
        }
    }

    /// Step 2 of an ownership change (see the module docs); `version` 0 files a new conversation
    /// as unassigned.
    pub(super) async fn index_owner(&self, tenant: Uuid, id: Uuid, version: u64, agent: Option<&str>) -> Result<()> {
        let (owners, member) = (self.keys.tenant_owners(tenant), id.simple().to_string());
        let new_index = self.owner_index(tenant, agent);
        for round in 0..CAS_ROUNDS {
            // A new conversation (version 0) has nothing recorded yet: its first round skips
            // the read (the script answers -1 if something was recorded after all).
            let cur: Option<String> = if round == 0 && version == 0 {
                None
            } else {
                self.redis.query(cmd("HGET").arg(&owners).arg(&member)).await?
            };
            let cur = cur.unwrap_or_default();
            let old_index =
                if cur.is_empty() { new_index.clone() } else { self.owner_index(tenant, recorded_owner(&cur)) };
            let keys = [owners.clone(), old_index, new_index.clone()];
            let args: [&dyn ToRedisArgsDyn; 4] = [&member, &cur, &version, &agent.unwrap_or("")];
            if self.redis.script::<i64>(&self.scripts.owners.settle, &keys, &args).await? >= 0 {
                return Ok(());
            }
        }
        Err(Error::unavailable("conversation owner is being changed concurrently; retry"))
    }

    /// Removes a deleted conversation from the tenant's indexes.
    pub(super) async fn unindex(&self, tenant: Uuid, id: Uuid) -> Result<()> {
        let (owners, member) = (self.keys.tenant_owners(tenant), id.simple().to_string());
        for _ in 0..CAS_ROUNDS {
            let cur: Option<String> = self.redis.query(cmd("HGET").arg(&owners).arg(&member)).await?;
            let cur = cur.unwrap_or_default();
            let keys = [
                owners.clone(),
                self.owner_index(tenant, recorded_owner(&cur)),
                self.keys.tenant_conversations(tenant),
            ];
            if self.redis.script::<i64>(&self.scripts.owners.unindex, &keys, &[&member, &cur]).await? >= 0 {
                return Ok(());
            }
        }
        Err(Error::unavailable("conversation is being changed concurrently; retry"))
    }

    pub(super) async fn write_owner(
        &self,
        tenant: Uuid,
        id: Uuid,
        agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let [publish, channel, payload] = self.changed_publication(id);
        let args: [&dyn ToRedisArgsDyn; 6] =
            [&tenant.to_string(), &agent.unwrap_or(""), &at.timestamp_millis(), &publish, &channel, &payload];
        let version =
            self.redis.script::<u64>(&self.scripts.owners.set_owner, &[self.keys.conversation(id)], &args).await;
        self.rooms.invalidate(id);
        let version = version?;
        if version == 0 {
            return Ok(None);
        }
        self.index_owner(tenant, id, version, agent).await?;
        Ok(self.read_conversation(id).await?.filter(|c| c.tenant_id == tenant))
    }

    /// `Store::count_conversations`: an owner-only filter is the `ZCARD` of its index (or the
    /// sum of the two an agent sees, which never share a member), with no conversation read —
    /// so, unlike a list, it includes index entries that lag their conversation (module docs)
    /// until a read repairs them. Any other filter pages through `find` up to `cap`.
    pub(super) async fn count(&self, tenant: Uuid, filter: &ConversationFilter, cap: usize) -> Result<usize> {
        if !filter.owner_only() {
            return count_by_pages(cap, |before, want| self.find(tenant, filter, before, want)).await;
        }
        let indexes = match &filter.owner {
            OwnerFilter::Any => vec![self.keys.tenant_conversations(tenant)],
            OwnerFilter::Unassigned => vec![self.owner_index(tenant, None)],
            OwnerFilter::Agent(a) => vec![self.owner_index(tenant, Some(a))],
            OwnerFilter::AgentOrUnassigned(a) => {
                vec![self.owner_index(tenant, Some(a)), self.owner_index(tenant, None)]
            }
        };
        let mut n = 0;
        for index in &indexes {
            let card: usize = self.redis.query(cmd("ZCARD").arg(index)).await?;
            n += card;
        }
        Ok(n.min(cap))
    }

    /// A page of the conversations matching `filter`, newest first, below `before`.
    pub(super) async fn list_owned(
        &self,
        tenant: Uuid,
        filter: &OwnerFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        let indexes = match filter {
            OwnerFilter::Any => vec![self.keys.tenant_conversations(tenant)],
            OwnerFilter::Unassigned => vec![self.owner_index(tenant, None)],
            OwnerFilter::Agent(a) => vec![self.owner_index(tenant, Some(a))],
            OwnerFilter::AgentOrUnassigned(a) => {
                vec![self.owner_index(tenant, Some(a)), self.owner_index(tenant, None)]
            }
        };
        let mut max = before.map_or_else(|| "+".to_string(), |b| format!("({}", b.simple()));
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            let want = limit - out.len();
            // The top `want` of the union: each index's top `want`, merged newest first.
            let mut members: Vec<String> = Vec::new();
            for index in &indexes {
                let page: Vec<String> = self
                    .redis
                    .query(cmd("ZREVRANGEBYLEX").arg(index).arg(&max).arg("-").arg("LIMIT").arg(0).arg(want))
                    .await?;
                members.extend(page);
            }
            members.sort_unstable_by(|a, b| b.cmp(a));
            members.dedup();
            let more = members.len() >= want;
            members.truncate(want);
            let ids: Vec<Uuid> = members.iter().filter_map(|m| Uuid::parse_str(m).ok()).collect();
            for (id, c) in ids.iter().zip(self.conversations_by_id(&ids).await?) {
                match c {
                    // The owner is re-checked: an index may lag its conversation (module docs).
                    Some(c) if c.tenant_id == tenant && filter.matches(&c) => out.push(c),
                    None if is_stale(*id) => self.unindex(tenant, *id).await?,
                    _ => {}
                }
            }
            match members.last() {
                Some(last) if more => max = format!("({last}"),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::recorded_owner;

    #[test]
    fn parses_recorded_owner() {
        assert_eq!(recorded_owner("3:alice"), Some("alice"));
        assert_eq!(recorded_owner("3:a:b"), Some("a:b"));
        assert_eq!(recorded_owner("0:"), None);
        assert_eq!(recorded_owner(""), None);
    }
}
