-- Reserve send slots at a number's shared rate (GCRA without burst), in one atomic step.
--
-- KEYS[1]  the number's theoretical arrival time (TAT): the next free slot, in µs since the
--          epoch by Redis's clock (so every worker copy agrees whatever its own clock says)
-- KEYS[2]  the number's slow-down hash {f = factor at `at`, at = µs, cut = µs of last cut}
-- ARGV[1]  base emission interval in µs (at factor 1)
-- ARGV[2]  slots wanted
-- ARGV[3]  horizon in µs: slots are never reserved further ahead than this
-- ARGV[4]  recovery of the factor per second (e.g. 0.05: from 0.5 back to 1 in 10 s)
--
-- Slots are spaced by interval = base / factor and handed out strictly one after the other:
-- there is no tolerance, so no burst, and any window of one second holds at most
-- 1 s / interval slot starts.
--
-- Returns {granted, first_slot_in_us, interval_us, factor_millionths, retry_in_us}.

if redis.replicate_commands then
  redis.replicate_commands()
end

local base = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local recovery = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local factor = 1.0
local saved = redis.call('HMGET', KEYS[2], 'f', 'at')
if saved[1] and saved[2] then
  factor = tonumber(saved[1]) + recovery * (now - tonumber(saved[2])) / 1000000
  if factor > 1.0 then factor = 1.0 end
end
local interval = math.ceil(base / factor)
if horizon < interval then horizon = interval end

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end

local granted = math.floor((now + horizon - tat) / interval)
if granted > wanted then granted = wanted end
local factor_millionths = math.floor(factor * 1000000)
if granted < 1 then
  return {0, 0, interval, factor_millionths, tat + interval - horizon - now}
end

local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {granted, tat - now, interval, factor_millionths, 0}
