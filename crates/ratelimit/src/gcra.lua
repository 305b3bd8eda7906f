-- GCRA (generic cell rate algorithm) in one atomic step.
--
-- KEYS[1]  the bucket
-- ARGV[1]  emission interval T, in microseconds (period / limit)
-- ARGV[2]  tolerance, in microseconds (limit * T: what lets `limit` requests through at once)
--
-- The key holds the theoretical arrival time (TAT) in whole microseconds since the epoch, by
-- Redis's own clock, so every api-gateway copy agrees whatever their clocks say. Integers
-- below 2^53 are exact in Lua's doubles, so no rounding accumulates over a burst.
--
-- Returns {allowed (1|0), reset_after_us, retry_after_us}: reset_after is how long until the
-- bucket is full again, retry_after how long until one more request would be allowed.

-- Redis < 5 replicates scripts verbatim and refuses a write after TIME; 5+ replicates the
-- effects and 7 ignores this call.
if redis.replicate_commands then
  redis.replicate_commands()
end

local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

-- Missing (or unreadable) means "no debt": the bucket is full.
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end

local new_tat = tat + interval
local allow_at = new_tat - tolerance
if now < allow_at then
  -- Refused requests write nothing, so hammering a full bucket does not extend the wait.
  return {0, tat - now, allow_at - now}
end

-- The key is worthless once the TAT has passed, which is at most `tolerance` from now.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(tolerance / 1000))
return {1, new_tat - now, 0}
