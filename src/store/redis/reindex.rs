//! The Lua that keeps a room's filter index entries (`find`) in step with its changes:
//! `REINDEX`, prepended to every room script whose change it follows.
//!
//! Owns how a change of a room's index sources turns into writes of its `ix` hash and of the
//! tenant's `P:tfind:{t}` ZSET; it does not own the layout (the `find` module docs: sources,
//! `e<entry>` counters, `v`), what the entries of a source are (`find::*_entries`, computed
//! by the node), nor the cluster's second step (`find::settle_find`, which reads the `ix` hash
//! this writes).
//!
//! Why batched: a new inbound room files dozens of entries (every prefix of the sender's number
//! and name, twice: the room's name and its participant), and the index once cost one
//! `HINCRBY` and one `ZADD` per entry, the bulk of the Redis time of an inbound webhook. Now a
//! change costs a fixed handful of commands whatever the number of entries: one `HMGET` of the
//! sources and `v`, one `HMGET` of the touched counters, one `HSET` of what stays (counters,
//! sources, `v`), one `HDEL` of what goes, one `ZADD` and one `ZREM` on the tenant index. Lua's
//! `unpack` is bounded by the C stack (about 8,000 values), so each bulk call goes in chunks.
//! Numbers are handed to Redis as strings formatted with `%d`: Redis formats a Lua number
//! argument with `%.17g`, which cost about a tenth of a new room's filing (callgrind).

/// `reindex(ix, tfind, id, changes)`: `changes` is `{source, new, source, new, ...}`; each
/// source's entries in the room's `ix` hash become `new` (entries one a line, sorted). An entry
/// whose count of holding sources rises from zero is filed in `tfind` (nil on a cluster), one
/// whose count falls to zero is unfiled and its counter deleted. `v` is bumped once when any
/// source changed; nothing is written when none did.
pub(super) const REINDEX: &str = r"
local function bulk(cmd, key, args, stride)
  local step = 4000 - 4000 % stride
  for i = 1, #args, step do
    redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end
local function reindex(ix, tfind, id, changes)
  local fields = {'v'}
  for i = 1, #changes, 2 do fields[#fields + 1] = 's' .. changes[i] end
  local cur = redis.call('HMGET', ix, unpack(fields))
  local delta, sets, dels, changed = {}, {}, {}, false
  for i = 1, #changes, 2 do
    local old, new = cur[(i + 1) / 2 + 1] or '', changes[i + 1]
    if old ~= new then
      changed = true
      local was, now = {}, {}
      for e in string.gmatch(old, '[^\n]+') do was[e] = true end
      for e in string.gmatch(new, '[^\n]+') do now[e] = true end
      for e in pairs(now) do if not was[e] then delta[e] = (delta[e] or 0) + 1 end end
      for e in pairs(was) do if not now[e] then delta[e] = (delta[e] or 0) - 1 end end
      if new == '' then
        dels[#dels + 1] = 's' .. changes[i]
      else
        sets[#sets + 1] = 's' .. changes[i]; sets[#sets + 1] = new
      end
    end
  end
  if not changed then return end
  local names, counters = {}, {}
  for e, d in pairs(delta) do
    if d ~= 0 then names[#names + 1] = e; counters[#counters + 1] = 'e' .. e end
  end
  local counts = {}
  for i = 1, #counters, 4000 do
    local part = redis.call('HMGET', ix, unpack(counters, i, math.min(i + 3999, #counters)))
    for j, c in ipairs(part) do counts[i + j - 1] = c end
  end
  local adds, rems = {}, {}
  for k, e in ipairs(names) do
    local old = tonumber(counts[k]) or 0
    local n = old + delta[e]
    if n > 0 then
      sets[#sets + 1] = counters[k]; sets[#sets + 1] = string.format('%d', n)
      if old <= 0 then adds[#adds + 1] = '0'; adds[#adds + 1] = e .. '\0' .. id end
    else
      dels[#dels + 1] = counters[k]
      if delta[e] < 0 then rems[#rems + 1] = e .. '\0' .. id end
    end
  end
  sets[#sets + 1] = 'v'; sets[#sets + 1] = string.format('%d', (tonumber(cur[1]) or 0) + 1)
  bulk('HSET', ix, sets, 2)
  bulk('HDEL', ix, dels, 1)
  if tfind then
    bulk('ZADD', tfind, adds, 2)
    bulk('ZREM', tfind, rems, 1)
  end
end
";
