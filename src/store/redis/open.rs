//! Opening an inbound room on Redis (`ChannelStore::open_room`): the peer's binding, the
//! conversation, its first participant and every index they are filed in, in one script.
//!
//! Why: a new inbound peer used to cost a chain of scripts — bind, the owner index, create the
//! conversation, add the participant — each in its own sequential round trip, and each script
//! run costs Redis 15–20 µs before its first command (issue 18's ingest measurements). On one
//! server every key involved (the account's bindings, the room's keys, the tenant's `tconvs`,
//! owner indexes and filter index, the contact's conversation list) can be declared to one
//! script, so `OPEN_ROOM` does what those scripts did, in their order, in one step: nothing
//! can be seen half made, and no binding is ever left behind by a room that never finished.
//!
//! It does not own what the records are (`conversations` builds them and emits the events),
//! nor the layouts (`crate::redis::keys`, `find`, `owners`). On a Redis Cluster those keys live
//! in different slots: `open_room` there runs the chain it replaces (`bind`, then
//! `Store::create_conversation` and `Store::add_participant`, each keeping its own invariants).

use super::{RedisStore, encode, find, reply_at};
use crate::error::{Error, Result};
use crate::model::{Address, Conversation, Participant};
use crate::redis::ToRedisArgsDyn;
use crate::store::channels::{Binding, Opened, peer_key};
use redis::Script;
use uuid::Uuid;

/// Binds, creates and seats, all or nothing; one server only (see the module docs). The steps
/// are those of `BIND`, `owners::SETTLE` (version 0: unassigned), `CREATE_CONVERSATION` and
/// `ADD_PARTICIPANT` (its `Changed` publication included), then the contact's conversation
/// list. The filter index of a room that did not exist has nothing to diff: the node works out
/// its `ix` fields and `tfind` members (`fresh_index`, what `reindex` would have written), and
/// the script writes them with one `HSET` and one `ZADD` — no Lua parsing of entries.
///
/// KEYS: 1 binds, 2 conv, 3 parts, 4 eps, 5 ix, 6 tfind, 7 tconvs, 8 towner, 9 tunowned,
/// [10 the contact's conversations].
/// ARGV: 1 peer key, 2 binding JSON, 3 tenant, 4 conversation doc, 5 epoch, 6 Redis `run_id`
/// (empty: none), 7 conversation id (32 hex digits), 8 participant id, 9 endpoint
/// (`type:target`), 10 participant JSON, 11–13 the `Changed` publication (`PUBLISH`, channel,
/// payload), 14 the number n of `ix` arguments, then n `ix` field/value arguments, then the
/// `tfind` score/member arguments.
/// Returns `{0, binding JSON}`: bound already, nothing changed; `{1}` opened; `{2}` the
/// conversation exists already, nothing changed.
const OPEN_ROOM: &str = r"
local bound = redis.call('HGET', KEYS[1], ARGV[1])
if bound then return {0, bound} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[7], 0, ARGV[7])
if not redis.call('HGET', KEYS[8], ARGV[7]) then
  redis.call('ZADD', KEYS[9], 0, ARGV[7])
  redis.call('HSET', KEYS[8], ARGV[7], '0:')
end
redis.call('HSET', KEYS[2], 'tenant', ARGV[3], 'doc', ARGV[4], 'seq', 0, 'epoch', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'run', ARGV[6]) end
redis.call('HSET', KEYS[4], ARGV[9], ARGV[8])
redis.call('HSET', KEYS[3], ARGV[8], ARGV[10])
local n = tonumber(ARGV[14])
for i = 15, 14 + n, 4000 do
  redis.call('HSET', KEYS[5], unpack(ARGV, i, math.min(i + 3999, 14 + n)))
end
for i = 15 + n, #ARGV, 4000 do
  redis.call('ZADD', KEYS[6], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
end
if KEYS[10] then redis.call('ZADD', KEYS[10], 0, ARGV[7]) end
redis.call(ARGV[11], ARGV[12], ARGV[13])
return {1}
";

pub(super) fn open_room_script() -> Script {
    Script::new(OPEN_ROOM)
}

/// What `reindex` files for a room that had no index yet, given its sources (`st`, `nm`,
/// `p<id>`) and their entries (one a line): the `ix` field/value arguments (each non-empty
/// source, each entry's count of holding sources, `v` 1) and the `tfind` score/member
/// arguments (every entry, once).
fn fresh_index(member: &str, sources: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let mut counts: std::collections::BTreeMap<&str, u32> = Default::default();
    let mut ix = Vec::new();
    for (source, entries) in sources.iter().filter(|(_, e)| !e.is_empty()) {
        ix.extend([format!("s{source}"), entries.clone()]);
        let mine: std::collections::BTreeSet<&str> = entries.split('\n').filter(|e| !e.is_empty()).collect();
        for e in mine {
            *counts.entry(e).or_default() += 1;
        }
    }
    let mut tfind = Vec::with_capacity(counts.len() * 2);
    for (e, n) in &counts {
        ix.extend([format!("e{e}"), n.to_string()]);
        tfind.extend(["0".to_string(), format!("{e}\0{member}")]);
    }
    ix.extend(["v".to_string(), "1".to_string()]);
    (ix, tfind)
}

impl RedisStore {
    /// `ChannelStore::open_room`.
    pub(super) async fn open(
        &self,
        account: Uuid,
        peer: &Address,
        c: &Conversation,
        p: &Participant,
    ) -> Result<Opened> {
        let b = Binding { conversation_id: c.id, participant_id: p.id };
        if self.cluster {
            return crate::store::channels::open_in_steps(self, account, peer, c, p).await;
        }
        let (t, room) = (c.tenant_id, c.id);
        let mut keys = vec![
            self.keys.bindings(account),
            self.keys.conversation(room),
            self.keys.room(room, "parts"),
            self.keys.room(room, "eps"),
            self.keys.room(room, "ix"),
            self.keys.tenant_find(t),
            self.keys.tenant_conversations(t),
            self.keys.tenant_owners(t),
            self.keys.unowned_conversations(t),
        ];
        keys.extend(p.contact_id.map(|contact| self.keys.contact_conversations(t, contact)));
        let endpoint = format!("{}:{}", p.address.kind.as_str(), p.address.target);
        let member = Self::member(room);
        let sources = [
            ("st".to_string(), find::status_entries(c.lifecycle.status)),
            ("nm".to_string(), find::name_entries(&c.name)),
            (format!("p{}", p.id), find::participant_entries(p)),
        ];
        let (ix, tfind) = fresh_index(&member, &sources);
        let [publish, channel, payload] = self.changed_publication(room);
        let fixed = [
            peer_key(peer),
            encode(&b)?,
            t.to_string(),
            encode(c)?,
            super::epoch::new_epoch(),
            self.run_id().await?,
            member.clone(),
            p.id.to_string(),
            endpoint,
            encode(p)?,
            publish,
            channel,
            payload,
            ix.len().to_string(),
        ];
        let args: Vec<&dyn ToRedisArgsDyn> =
            fixed.iter().chain(&ix).chain(&tfind).map(|a| a as &dyn ToRedisArgsDyn).collect();
        let reply: Vec<redis::Value> = self.redis.script(&self.scripts.open_room, &keys, &args).await?;
        self.rooms.invalidate(room);
        match reply_at::<i64>(&reply, 0)? {
            0 => Ok(Opened::Bound(super::decode(&reply_at::<String>(&reply, 1)?)?)),
            1 => Ok(Opened::Created { contact_linked: p.contact_id.is_some() }),
            _ => Err(Error::Conflict(format!("conversation {room} already exists"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fresh_index;

    #[test]
    fn a_fresh_index_counts_each_entry_once_per_source_holding_it() {
        let sources = [
            ("st".to_string(), "s:open".to_string()),
            ("nm".to_string(), "q:+\nq:+1".to_string()),
            ("pX".to_string(), "a:tel:+1\nc:tel\nq:+\nq:+1".to_string()),
            ("pY".to_string(), String::new()),
        ];
        let (ix, tfind) = fresh_index("abc", &sources);
        let pairs: Vec<(&str, &str)> = ix.chunks(2).map(|p| (p[0].as_str(), p[1].as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("sst", "s:open"),
                ("snm", "q:+\nq:+1"),
                ("spX", "a:tel:+1\nc:tel\nq:+\nq:+1"),
                ("ea:tel:+1", "1"),
                ("ec:tel", "1"),
                ("eq:+", "2"),
                ("eq:+1", "2"),
                ("es:open", "1"),
                ("v", "1"),
            ]
        );
        let members: Vec<&str> = tfind.chunks(2).map(|p| p[1].as_str()).collect();
        assert_eq!(members, ["a:tel:+1\0abc", "c:tel\0abc", "q:+\0abc", "q:+1\0abc", "s:open\0abc"]);
        assert!(tfind.chunks(2).all(|p| p[0] == "0"));
    }
}
