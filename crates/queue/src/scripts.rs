//! Lua scripts for the steps that must be atomic. Times come from Redis' own clock (`TIME`) so
//! consumers on machines with skewed clocks agree on when a retry is due.

use std::sync::LazyLock;

use deadpool_redis::redis::Script;

/// Schedules a retry. KEYS: stream, delayed. ARGV: group, entry id, delay ms, member.
///
/// Only the caller whose `XACK` takes the entry out of the pending list schedules it, so an
/// entry handled twice (re-claimed from a slow consumer) is not retried twice. Returns 1 if
/// this call scheduled it.
pub(crate) static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then
  local t = redis.call('TIME')
  local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], string.format('%.0f', due), ARGV[4])
end
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
",
    )
});

/// Dead-letters an entry. KEYS: stream, dead. ARGV: group, entry id, then field/value pairs.
/// Same ownership rule as `RETRY`; adds `failed_at` (unix ms). Returns 1 if this call moved it.
pub(crate) static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local fields = {}
  for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
  fields[#fields + 1] = 'failed_at'
  fields[#fields + 1] = string.format('%.0f', now)
  redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
",
    )
});

/// Moves due retries back to the stream. KEYS: delayed, stream, dead. ARGV: limit.
///
/// Read, re-add and remove happen in one script, so consumers running it at the same time
/// neither duplicate nor lose an entry. A member that is not valid JSON (written by hand) goes
/// to the dead-letter stream rather than blocking the set forever. Returns the count moved.
pub(crate) static PROMOTE_DUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local ok, m = pcall(cjson.decode, member)
  if ok and type(m) == 'table' and type(m.id) == 'string' and type(m.kind) == 'string'
     and type(m.payload) == 'string' then
    local fields = {'id', m.id, 'kind', m.kind, 'payload', m.payload,
                    'attempt', tostring((tonumber(m.attempt) or 0) + 1),
                    'enqueued_at', tostring(m.enqueued_at or '0')}
    if type(m.correlation_id) == 'string' then
      fields[#fields + 1] = 'correlation_id'
      fields[#fields + 1] = m.correlation_id
    end
    redis.call('XADD', KEYS[2], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[3], '*', 'error', 'corrupt delayed entry', 'raw', member, 'failed_at', now)
  end
  redis.call('ZREM', KEYS[1], member)
end
return #due
",
    )
});

/// One consistent snapshot of a queue's numbers. KEYS: stream, delayed, dead.
/// Returns {xlen, pending (all groups), oldest entry id or '', zcard, dead xlen, time s, time µs}.
pub(crate) static STATS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local depth = redis.call('XLEN', KEYS[1])
local pending = 0
local oldest = ''
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    for i = 1, #g, 2 do
      if g[i] == 'pending' then pending = pending + g[i + 1] end
    end
  end
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if first[1] then oldest = first[1][1] end
end
local t = redis.call('TIME')
return {depth, pending, oldest, redis.call('ZCARD', KEYS[2]), redis.call('XLEN', KEYS[3]), t[1], t[2]}
",
    )
});
