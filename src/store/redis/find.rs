//! The conversation filter index on Redis: what `GET /v1.0/conversations?status=&address=&
//! channel=&q=` walks instead of scanning every room.
//!
//! Owns the index entries of a conversation and the listing that walks them; the Lua that
//! keeps them (`REINDEX`, prepended to every room script whose change they follow) is
//! `reindex`. It does not own what a filter means (`crate::store::ConversationFilter::matches`):
//! every candidate the index yields is re-checked against the conversation as stored.
//!
//! **Layout.** One ZSET per tenant, `P:tfind:{t}`, members `<entry>\0<conversation id>` at
//! score 0, entries `s:<status>`, `a:<type>:<target>` (a participant's primary or linked
//! endpoint), `c:<type>` (a channel a participant is on) and `q:<prefix>` (every prefix, up to
//! `PREFIX_CHARS` characters, of the name and of each participant's targets and display names,
//! in `search_text` form). One entry's members sort by id, i.e. creation order (UUIDv7), so an
//! entry pages newest first with `ZREVRANGEBYLEX` from the cursor, like `tconvs`. One key (not
//! one per entry) so that a room script can declare it in `KEYS` before knowing which entries
//! change.
//!
//! **Who contributes what.** Each source of entries (`st`: the status, `nm`: the name,
//! `p<participant id>`: a participant) records its entries in the room's `ix` hash
//! (`s<source>` → entries, one a line); `e<entry>` counts the sources holding an entry, so two
//! participants on `tel` make `c:tel` once, and it leaves only with the last of them; `v` is
//! bumped at every change. `REINDEX` diffs each changed source's old and new entries and files or
//! unfiles the entries whose count crosses zero, in a fixed handful of commands per change.
//!
//! **One server vs. a cluster.** On one server the tenant ZSET is passed to the room script
//! and written in the same step as the change. On a cluster it lives in another slot than the
//! room, out of the script's reach: like the owner indexes (`owners`), it follows in a second
//! step, `settle_find`, which reads the room's `ix` and replaces the conversation's entries in
//! the tenant slot only if its `v` is newer than the one recorded in `P:tfindv:{t}` — so two
//! racing changes leave the index matching whichever was written last. Reads re-check every
//! candidate, so a lagging index never shows a conversation that does not match; a node dying
//! between the steps leaves it stale until the conversation's next indexed change.
//! Conversations stored before this index existed enter it as their status, name or
//! participants next change.

use super::{RedisStore, is_stale};
use crate::error::Result;
use crate::model::{Conversation, ConversationStatus, Participant};
use crate::redis::ToRedisArgsDyn;
use crate::store::{ConversationFilter, OwnerFilter, Store, indexed_prefix, prefixes};
use futures_util::future::try_join_all;
use redis::Script;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// One page of candidates, walked in the tenant slot. KEYS: the indexes the groups name.
/// ARGV: cursor (32 hex digits, '' = from the newest), how many to find, how many members to
/// look at at most, the number of groups, then per group its number of alternatives and per
/// alternative the index in KEYS and the member prefix. A group holds when one of its
/// alternatives has `<prefix><id>`. The driving group is the single-alternative one with the
/// fewest members below the cursor; it is walked newest first and every other group is
/// checked with `ZSCORE`. Returns `{last, ids...}`: `last` the id to continue below, '' when
/// the driving index is exhausted.
const FIND: &str = r"
local cursor, want, budget = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local groups, i = {}, 5
for g = 1, tonumber(ARGV[4]) do
  local n = tonumber(ARGV[i]); i = i + 1
  local alts = {}
  for a = 1, n do alts[a] = {KEYS[tonumber(ARGV[i])], ARGV[i + 1]}; i = i + 2 end
  groups[g] = alts
end
local function bounds(p, below)
  local hi
  if below ~= '' then hi = '(' .. p .. below elseif p == '' then hi = '+' else hi = '(' .. p .. '\255' end
  if p == '' then return hi, '-' end
  return hi, '[' .. p
end
local best, fewest
for g, alts in ipairs(groups) do
  if #alts == 1 then
    local hi, lo = bounds(alts[1][2], cursor)
    local n = redis.call('ZLEXCOUNT', alts[1][1], lo, hi)
    if not fewest or n < fewest then best, fewest = g, n end
  end
end
if not best then return {''} end
local key, p = groups[best][1][1], groups[best][1][2]
local hi, lo = bounds(p, cursor)
local out, scanned, last, done = {''}, 0, '', false
local step = 128
while not done do
  local page = redis.call('ZREVRANGEBYLEX', key, hi, lo, 'LIMIT', 0, step)
  for _, m in ipairs(page) do
    local id = string.sub(m, #p + 1)
    scanned = scanned + 1
    last = id
    local ok = true
    for g, alts in ipairs(groups) do
      if g ~= best then
        local any = false
        for _, a in ipairs(alts) do
          if redis.call('ZSCORE', a[1], a[2] .. id) then any = true; break end
        end
        if not any then ok = false; break end
      end
    end
    if ok then
      out[#out + 1] = id
      if #out - 1 >= want then done = true; break end
    end
  end
  if not done then
    if #page < step then last = ''; done = true
    elseif scanned >= budget then done = true
    else hi = '(' .. p .. last end
  end
end
out[1] = last
return out
";

/// Step 2 on a cluster (module docs). KEYS: tfind, tfindv. ARGV: conversation id, the room
/// index version (0: the conversation is gone), its entries. Returns 1 applied, 0 not newer.
const SYNC: &str = r"
local v = tonumber(ARGV[2])
local was = {}
local rec = redis.call('HGET', KEYS[2], ARGV[1])
if rec then
  local first = true
  for e in string.gmatch(rec, '[^\n]+') do
    if first then
      if v ~= 0 and tonumber(e) >= v then return 0 end
      first = false
    else was[e] = true end
  end
end
local now = {}
for i = 3, #ARGV do now[ARGV[i]] = true end
for e in pairs(now) do if not was[e] then redis.call('ZADD', KEYS[1], 0, e .. '\0' .. ARGV[1]) end end
for e in pairs(was) do if not now[e] then redis.call('ZREM', KEYS[1], e .. '\0' .. ARGV[1]) end end
if v == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
else
  local line = ARGV[2]
  for i = 3, #ARGV do line = line .. '\n' .. ARGV[i] end
  redis.call('HSET', KEYS[2], ARGV[1], line)
end
return 1
";

/// Members looked at per `FIND` call at most (each one `ZSCORE` per other filter).
const BUDGET: usize = 2048;

#[derive(Debug)]
pub struct FindScripts {
    find: Script,
    sync: Script,
}

impl FindScripts {
    pub fn new() -> FindScripts {
        FindScripts { find: Script::new(FIND), sync: Script::new(SYNC) }
    }
}

/// Entries one a line, sorted and without duplicates (so equal sets are equal strings); an
/// entry that could not be told apart from the separators is left out.
fn lines(entries: impl IntoIterator<Item = String>) -> String {
    let set: BTreeSet<String> = entries.into_iter().filter(|e| !e.contains(['\n', '\0'])).collect();
    set.into_iter().collect::<Vec<_>>().join("\n")
}

pub(super) fn status_entries(s: ConversationStatus) -> String {
    format!("s:{}", s.as_str())
}

pub(super) fn name_entries(name: &str) -> String {
    lines(prefixes(name).into_iter().map(|p| format!("q:{p}")))
}

pub(super) fn participant_entries(p: &Participant) -> String {
    lines(p.endpoints().into_iter().flat_map(|e| {
        let (kind, a) = (e.address.kind.as_str(), &e.address);
        let mut v = vec![format!("a:{kind}:{}", a.target), format!("c:{kind}")];
        v.extend(prefixes(&a.target).into_iter().chain(prefixes(&a.name)).map(|p| format!("q:{p}")));
        v
    }))
}

impl RedisStore {
    /// The tenant index a room script writes in the same step (one server), or none (a
    /// cluster: `settle_find` follows).
    pub(super) fn find_keys(&self, tenant: Uuid) -> Option<String> {
        (!self.cluster).then(|| self.keys.tenant_find(tenant))
    }

    /// The KEYS of an indexing room script: the room's `parts`, then its `ix`, then (one
    /// server) the tenant's filter index.
    pub(super) fn indexing_keys(&self, tenant: Uuid, room: Uuid, parts: &[&str]) -> Vec<String> {
        let mut keys: Vec<String> = parts.iter().map(|p| self.keys.room(room, p)).collect();
        keys.push(self.keys.room(room, "ix"));
        keys.extend(self.find_keys(tenant));
        keys
    }

    /// The tenant a room belongs to (never changes), `None` for an unknown room.
    pub(super) async fn tenant_of(&self, room: Uuid) -> Result<Option<Uuid>> {
        let t: Option<String> =
            self.redis.query(redis::cmd("HGET").arg(self.keys.conversation(room)).arg("tenant")).await?;
        Ok(t.and_then(|t| Uuid::parse_str(&t).ok()))
    }

    /// A conversation as the index names it: its id in 32 hex digits.
    pub(super) fn member(id: Uuid) -> String {
        id.simple().to_string()
    }

    /// Step 2 of an indexed change on a cluster (module docs); nothing on one server.
    pub(super) async fn settle_find(&self, tenant: Uuid, id: Uuid) -> Result<()> {
        if !self.cluster {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.keys.room(id, "ix"));
        pipe.cmd("EXISTS").arg(self.keys.conversation(id));
        let (ix, exists): (HashMap<String, String>, bool) = self.redis.pipe(&pipe).await?;
        let version: u64 = if exists { ix.get("v").and_then(|v| v.parse().ok()).unwrap_or(0).max(1) } else { 0 };
        let (member, version_arg) = (Self::member(id), version.to_string());
        let entries: Vec<&str> = if exists {
            ix.iter()
                .filter(|(k, n)| k.starts_with('e') && n.parse::<i64>().is_ok_and(|n| n > 0))
                .map(|(k, _)| &k[1..])
                .collect()
        } else {
            Vec::new()
        };
        let mut args: Vec<&dyn ToRedisArgsDyn> = vec![&member, &version_arg];
        args.extend(entries.iter().map(|e| e as &dyn ToRedisArgsDyn));
        let keys = [self.keys.tenant_find(tenant), self.keys.tenant_find_versions(tenant)];
        self.redis.script::<i64>(&self.scripts.find.sync, &keys, &args).await.map(|_| ())
    }

    /// A page of the tenant's conversations matching `filter`, newest first, below `before`:
    /// an owner-only filter pages the tenant's list or the owner indexes (`owners`), any other
    /// walks this index.
    pub(super) async fn find(
        &self,
        tenant: Uuid,
        filter: &ConversationFilter,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Conversation>> {
        match &filter.owner {
            _ if !filter.owner_only() => {}
            OwnerFilter::Any => return self.list_conversations(tenant, before, limit).await,
            owner => return self.list_owned(tenant, owner, before, limit).await,
        }
        let (keys, groups) = self.groups(tenant, filter);
        let mut cursor = before.map(Self::member).unwrap_or_default();
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            let mut argv = vec![cursor.clone(), (limit - out.len()).to_string(), BUDGET.to_string()];
            argv.push(groups.len().to_string());
            for alts in &groups {
                argv.push(alts.len().to_string());
                for (k, p) in alts {
                    argv.extend([k.to_string(), p.clone()]);
                }
            }
            let args: Vec<&dyn ToRedisArgsDyn> = argv.iter().map(|a| a as &dyn ToRedisArgsDyn).collect();
            let reply: Vec<String> = self.redis.script(&self.scripts.find.find, &keys, &args).await?;
            let Some((next, found)) = reply.split_first() else { break };
            let ids: Vec<Uuid> = found.iter().filter_map(|m| Uuid::parse_str(m).ok()).collect();
            let mut candidates = Vec::with_capacity(ids.len());
            for (id, c) in ids.iter().zip(self.conversations_by_id(&ids).await?) {
                match c {
                    // The truth decides: an index may lag its conversation on a cluster.
                    Some(c) if c.tenant_id == tenant && filter.matches_conversation(&c) => candidates.push(c),
                    None if self.cluster && is_stale(*id) => self.settle_find(tenant, *id).await?,
                    _ => {}
                }
            }
            // Participants only of the candidates a filter needs them for, read together.
            let needy: Vec<Uuid> = candidates.iter().filter(|c| filter.needs_participants(c)).map(|c| c.id).collect();
            let parts = try_join_all(needy.iter().map(|&id| self.list_participants(id))).await?;
            let parts: HashMap<Uuid, Vec<Participant>> = needy.into_iter().zip(parts).collect();
            out.extend(candidates.into_iter().filter(|c| parts.get(&c.id).is_none_or(|p| filter.matches(c, p))));
            if next.is_empty() {
                break;
            }
            cursor.clone_from(next);
        }
        out.truncate(limit);
        Ok(out)
    }

    /// The index keys and the groups of `(key index, member prefix)` alternatives of `FIND`.
    fn groups(&self, tenant: Uuid, f: &ConversationFilter) -> (Vec<String>, Vec<Vec<(usize, String)>>) {
        let find = self.keys.tenant_find(tenant);
        let mut keys = vec![find];
        let mut key = |k: String| match keys.iter().position(|x| *x == k) {
            Some(i) => i + 1,
            None => {
                keys.push(k);
                keys.len()
            }
        };
        let mut groups: Vec<Vec<(usize, String)>> = Vec::new();
        let entry = |e: String| vec![(1, format!("{e}\0"))];
        if let Some(s) = f.status {
            groups.push(entry(status_entries(s)));
        }
        if let Some((kind, target)) = &f.address {
            groups.push(entry(format!("a:{}:{target}", kind.as_str())));
        }
        if let Some(kind) = f.channel {
            groups.push(entry(format!("c:{}", kind.as_str())));
        }
        if let Some(q) = &f.q {
            groups.push(entry(format!("q:{}", indexed_prefix(q))));
        }
        match &f.owner {
            OwnerFilter::Any => {}
            OwnerFilter::Unassigned => groups.push(vec![(key(self.keys.unowned_conversations(tenant)), String::new())]),
            OwnerFilter::Agent(a) => groups.push(vec![(key(self.keys.owned_conversations(tenant, a)), String::new())]),
            OwnerFilter::AgentOrUnassigned(a) => groups.push(vec![
                (key(self.keys.owned_conversations(tenant, a)), String::new()),
                (key(self.keys.unowned_conversations(tenant)), String::new()),
            ]),
        }
        (keys, groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_lines_without_separators() {
        assert_eq!(lines(["b".to_string(), "a".into(), "b".into(), "x\ny".into()]), "a\nb");
        assert_eq!(name_entries("Ab"), "q:a\nq:ab");
        assert_eq!(name_entries(""), "");
    }
}
