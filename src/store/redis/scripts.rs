//! The Lua scripts that make each multi-key change to a room atomic.
//!
//! Owns the script sources and their calling conventions (the `KEYS`/`ARGV` order is written
//! above each one); `RedisStore` owns when they run. Every script touches the keys of exactly
//! one room (one hash tag), so each runs whole on one Redis Cluster node; on one server those
//! that change an indexed field also get the tenant's filter index (`find`). Scripts are sent with
//! `EVALSHA` and loaded on `NOSCRIPT` (after a Redis restart the script cache is empty).

use redis::Script;

/// The append, in one round trip: idempotency check, next seq, history, id index, retry key,
/// history trimming and the publication — so history order is delivery order on every node.
///
/// KEYS: conv, hist, ids, patch, [idem], [webhook outbox]
/// ARGV: message JSON before the seq, after it; frame before the message JSON, after it;
///       message id; idempotency TTL secs; history max len; room channel; `PUBLISH` or
///       `SPUBLISH`; the payload tag of a message (`crate::wire::publication`); the highest
///       seq this node has seen in the room (its floor); a fresh epoch; the index in KEYS of
///       the webhook outbox stream (0: none); its entry field; the entry before the message
///       JSON, after it (`crate::wire::OpenEvent`); the Redis server's `run_id` as the node
///       knows it (empty: do not check)
/// Returns `{0}` unknown room, `{1, seq, status}` appended (the room's status as the append
/// found it), `{2, json}` duplicate, `{3, seq}` duplicate whose original fell out of history,
/// `{4}` closed.
///
/// The status is checked and returned here, in the same step as the append, so the post path
/// can take the rest of the conversation from the node's cache: a room closed, resolved or
/// snoozed on another node a moment ago refuses (closed) or reopens exactly as if it had been
/// read, whatever the cache still holds. One `HMGET` reads all the script needs of the room
/// (exists, status, `run`).
///
/// A seq at or below the floor means Redis went back in time (a failover or a restart from an
/// older snapshot lost acknowledged writes): the room then starts the fresh epoch and its seq
/// continues above the floor, so no seq is ever handed out twice under one epoch. Likewise when
/// the room's stored `run` is not the server's current `run_id`: Redis restarted since the room
/// last wrote, and nobody can prove the restart lost nothing (a node restarted with it has no
/// floor), so the room starts the fresh epoch, its seq continuing upward.
///
/// With a webhook outbox key (Redis on one server only: it is in another slot than the room),
/// the `message.created` entry is added to it in the same step as the message, so an
/// acknowledged message's webhook event cannot be lost by a node dying after the append.
///
/// History is trimmed in batches (once it is 64 over the limit) so that the trimmed messages'
/// id-index and patch entries can be removed with them.
const APPEND: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'tenant', 'status', 'run')
if not cur[1] then return {0} end
local status = cur[2] or 'open'
if status == 'closed' then return {4} end
local ob = tonumber(ARGV[13])
local idem = KEYS[5]
if ob == 5 then idem = nil end
if idem then
  local prev = redis.call('GET', idem)
  if prev then
    local e = redis.call('XRANGE', KEYS[2], prev .. '-1', prev .. '-1')
    if e[1] then return {2, redis.call('HGET', KEYS[4], e[1][2][2]) or e[1][2][4]} end
    return {3, tonumber(prev)}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local floor = tonumber(ARGV[11])
local run = ARGV[17]
local was = run
if run ~= '' then was = cur[3] end
if seq <= floor then
  seq = floor + 1
  redis.call('HSET', KEYS[1], 'seq', seq, 'epoch', ARGV[12])
elseif was and was ~= run then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[12])
end
-- Written only when it changes: one write less per message.
if was ~= run then redis.call('HSET', KEYS[1], 'run', run) end
local s = string.format('%d', seq)
local json = ARGV[1] .. s .. ARGV[2]
redis.call('XADD', KEYS[2], s .. '-1', 'i', ARGV[5], 'm', json)
redis.call('HSET', KEYS[3], ARGV[5], s)
if idem then redis.call('SET', idem, s, 'EX', ARGV[6]) end
local max = tonumber(ARGV[7])
local len = redis.call('XLEN', KEYS[2])
if len > max + 64 then
  local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', len - max)
  for _, e in ipairs(old) do
    redis.call('HDEL', KEYS[3], e[2][2])
    redis.call('HDEL', KEYS[4], e[2][2])
  end
  redis.call('XTRIM', KEYS[2], 'MAXLEN', max)
end
if ob > 0 then redis.call('XADD', KEYS[ob], '*', ARGV[14], ARGV[15] .. json .. ARGV[16]) end
redis.call(ARGV[9], ARGV[8], ARGV[10] .. s .. ' ' .. ARGV[3] .. json .. ARGV[4])
return {1, seq, status}
";

/// A slice of history, each message as last updated (history entries are immutable, so a
/// delivery-status change is stored in the room's `patch` hash and wins over the entry).
/// KEYS: hist, patch. ARGV: `XRANGE` or `XREVRANGE`, from, to, count. Returns JSON strings.
const READ_RANGE: &str = r"
local e = redis.call(ARGV[1], KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[4])
local patched = redis.call('EXISTS', KEYS[2]) == 1
local out = {}
for i, x in ipairs(e) do
  out[i] = (patched and redis.call('HGET', KEYS[2], x[2][2])) or x[2][4]
end
return out
";

/// Moves a room whose seq is below `floor` (a seq somebody was already told: Redis lost
/// acknowledged writes) to `floor` under a fresh epoch; a room last written before a Redis
/// restart (stored `run` other than the current `run_id`, see `APPEND`) keeps its seq and gets
/// the fresh epoch. KEYS: conv. ARGV: floor, fresh epoch, current run_id (empty: no check).
/// Returns `{seq, epoch}` as now stored, or an empty reply for an unknown room.
const ADVANCE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'seq', 'epoch', 'run')
if not cur[2] then return {} end
local seq = tonumber(cur[1])
local floor = tonumber(ARGV[1])
local restarted = ARGV[3] ~= '' and cur[3] and cur[3] ~= ARGV[3]
if seq < floor or restarted then
  if seq < floor then seq = floor end
  redis.call('HSET', KEYS[1], 'seq', seq, 'epoch', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'run', ARGV[3]) end
  return {seq, ARGV[2]}
end
return {seq, cur[2]}
";

/// Creates a conversation unless its key exists, so two creators can never both win, and
/// files its status and name in the filter index (`find`; `[tfind]`: one server only).
/// KEYS: conv, ix, [tfind]. ARGV: tenant, doc, epoch, Redis `run_id` (empty: none),
/// conversation id (32 hex digits), status entries, name entries. Returns 1 created, 0 existed.
const CREATE_CONVERSATION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'doc', ARGV[2], 'seq', 0, 'epoch', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'run', ARGV[4]) end
reindex(KEYS[2], KEYS[3], ARGV[5], {'st', ARGV[6], 'nm', ARGV[7]})
return 1
";

/// KEYS: conv, ix, [tfind]. ARGV: tenant, doc, conversation id, name entries, then the
/// `Changed` publication (see `ADD_PARTICIPANT`; timers and name are read by the post path).
/// Returns 1 updated, 0 unknown (or another tenant's).
const UPDATE_CONVERSATION: &str = r"
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
reindex(KEYS[2], KEYS[3], ARGV[3], {'nm', ARGV[4]})
redis.call(ARGV[5], ARGV[6], ARGV[7])
return 1
";

/// KEYS: conv, then every other room key (`ix` among them), then [tfind]. ARGV: tenant,
/// conversation id, the number of room keys, the index of `ix` in KEYS, then the `Changed`
/// publication (see `ADD_PARTICIPANT`). Unfiles every filter index entry of the room (one
/// server), then deletes the room. Returns 1 deleted, 0 unknown.
const DELETE_CONVERSATION: &str = r"
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[3])
local tfind = KEYS[n + 1]
if tfind then
  for _, k in ipairs(redis.call('HKEYS', KEYS[tonumber(ARGV[4])])) do
    if string.sub(k, 1, 1) == 'e' then redis.call('ZREM', tfind, string.sub(k, 2) .. '\0' .. ARGV[2]) end
  end
end
redis.call('DEL', unpack(KEYS, 1, n))
redis.call(ARGV[5], ARGV[6], ARGV[7])
return 1
";

/// Every participant script — and every script that changes the conversation itself (status,
/// owner, document, deletion) — ends by publishing `Publication::Changed` on the room's channel
/// (ARGV: `PUBLISH` or `SPUBLISH`, the channel, the payload), in the same step as the change,
/// so every node's room cache (`crate::store::RoomCache`) drops the room.
///
/// KEYS: conv, parts, eps, ix, [tfind]. ARGV: participant id, endpoint (`type:target`),
/// participant JSON, conversation id, its filter index entries, then the publication.
/// Returns 1 added, 0 endpoint taken, -1 unknown room.
const ADD_PARTICIPANT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
reindex(KEYS[4], KEYS[5], ARGV[4], {'p' .. ARGV[1], ARGV[5]})
redis.call(ARGV[6], ARGV[7], ARGV[8])
return 1
";

/// KEYS: parts, eps, read, ix, [tfind]. ARGV: participant id, conversation id, then the
/// publication (see `ADD_PARTICIPANT`). Returns 1 removed, 0 unknown.
const REMOVE_PARTICIPANT: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
local eps = redis.call('HGETALL', KEYS[2])
for i = 1, #eps, 2 do
  if eps[i + 1] == ARGV[1] then redis.call('HDEL', KEYS[2], eps[i]) end
end
reindex(KEYS[4], KEYS[5], ARGV[2], {'p' .. ARGV[1], ''})
redis.call(ARGV[3], ARGV[4], ARGV[5])
return 1
";

/// Raises (never lowers) a participant's read marker.
/// KEYS: parts, read. ARGV: participant id, seq.
const MARK_READ: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
";

/// KEYS: ids, hist, patch. ARGV: message id. Returns the message JSON (as last updated) or nil.
const GET_MESSAGE: &str = r"
local p = redis.call('HGET', KEYS[3], ARGV[1])
if p then return p end
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s then return false end
local e = redis.call('XRANGE', KEYS[2], s .. '-1', s .. '-1')
if e[1] then return e[1][2][4] end
return false
";

/// Replaces a message as stored, if it still reads `expected` (compare-and-set, so two
/// concurrent delivery reports cannot overwrite each other).
/// KEYS: ids, hist, patch. ARGV: message id, expected JSON, new JSON.
/// Returns 1 replaced, 0 changed meanwhile, -1 unknown (or trimmed) message.
const UPDATE_MESSAGE: &str = r"
local cur = redis.call('HGET', KEYS[3], ARGV[1])
if not cur then
  local s = redis.call('HGET', KEYS[1], ARGV[1])
  if not s then return -1 end
  local e = redis.call('XRANGE', KEYS[2], s .. '-1', s .. '-1')
  if not e[1] then return -1 end
  cur = e[1][2][4]
end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
";

/// Create-if-absent of a room binding: the one point where nodes racing on the same inbound
/// peer agree on one room. KEYS: the account's bindings. ARGV: peer key, binding JSON.
/// Returns nil when bound now, else the existing binding JSON.
const BIND: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return false end
return redis.call('HGET', KEYS[1], ARGV[1])
";

/// KEYS: binds. ARGV: peer key, conversation id. Removes the binding if it names that
/// conversation (the binding JSON holds it as written). Returns 1 removed, 0 not.
const UNBIND: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.find(cur, ARGV[2], 1, true) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
";

/// KEYS: parts, ix, [tfind]. ARGV: participant id, JSON, conversation id, its filter index
/// entries (linked endpoints change them), then the publication (see `ADD_PARTICIPANT`).
/// Replaces an existing participant only.
const UPDATE_PARTICIPANT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
reindex(KEYS[2], KEYS[3], ARGV[3], {'p' .. ARGV[1], ARGV[4]})
redis.call(ARGV[5], ARGV[6], ARGV[7])
return 1
";

/// Every script, hashed once at start-up.
#[derive(Debug)]
pub struct Scripts {
    pub append: Script,
    pub advance: Script,
    pub create_conversation: Script,
    pub update_conversation: Script,
    pub delete_conversation: Script,
    pub set_status: Script,
    pub add_participant: Script,
    pub remove_participant: Script,
    pub mark_read: Script,
    pub get_message: Script,
    pub read_range: Script,
    pub update_message: Script,
    pub bind: Script,
    pub unbind: Script,
    pub update_participant: Script,
    /// Bind, create and seat a new inbound room at once (source in `open.rs`).
    pub open_room: Script,
    /// Retention's bounded trim (source in `retention.rs`).
    pub trim: Script,
    /// Conversation ownership (sources in `owners.rs`).
    pub owners: super::owners::OwnerScripts,
    /// The filter index walk and its cluster step (sources in `find.rs`).
    pub find: super::find::FindScripts,
}

/// A room script that keeps the filter index: `body` after the `reindex` function.
fn indexing(body: &str) -> Script {
    Script::new(&format!("{}{body}", super::reindex::REINDEX))
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            append: Script::new(APPEND),
            advance: Script::new(ADVANCE),
            create_conversation: indexing(CREATE_CONVERSATION),
            update_conversation: indexing(UPDATE_CONVERSATION),
            delete_conversation: Script::new(DELETE_CONVERSATION),
            set_status: indexing(super::status::SET_STATUS),
            add_participant: indexing(ADD_PARTICIPANT),
            remove_participant: indexing(REMOVE_PARTICIPANT),
            mark_read: Script::new(MARK_READ),
            get_message: Script::new(GET_MESSAGE),
            read_range: Script::new(READ_RANGE),
            update_message: Script::new(UPDATE_MESSAGE),
            bind: Script::new(BIND),
            unbind: Script::new(UNBIND),
            update_participant: indexing(UPDATE_PARTICIPANT),
            open_room: super::open::open_room_script(),
            trim: super::retention::trim_script(),
            owners: super::owners::OwnerScripts::new(),
            find: super::find::FindScripts::new(),
        }
    }
}
