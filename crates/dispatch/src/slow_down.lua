-- Halve a number's shared send rate after Meta throttled it (130429, 80007), at most once per
-- cool-down so that the many calls of one burst that all failed count once.
--
-- KEYS[1]  the number's slow-down hash {f, at, cut} (see send_rate.lua)
-- ARGV[1]  floor of the factor (e.g. 0.05)
-- ARGV[2]  recovery per second
-- ARGV[3]  cool-down between two cuts, in µs
--
-- Returns the factor after the call, in millionths.

if redis.replicate_commands then
  redis.replicate_commands()
end

local floor = tonumber(ARGV[1])
local recovery = tonumber(ARGV[2])
local cooldown = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

local factor = 1.0
local saved = redis.call('HMGET', KEYS[1], 'f', 'at', 'cut')
if saved[1] and saved[2] then
  factor = tonumber(saved[1]) + recovery * (now - tonumber(saved[2])) / 1000000
  if factor > 1.0 then factor = 1.0 end
end
if saved[3] and now - tonumber(saved[3]) < cooldown then
  return math.floor(factor * 1000000)
end

factor = factor / 2
if factor < floor then factor = floor end
redis.call('HSET', KEYS[1], 'f', tostring(factor), 'at', string.format('%.0f', now), 'cut', string.format('%.0f', now))
-- Worthless once the factor is back to 1.
redis.call('PEXPIRE', KEYS[1], math.ceil((1.0 - factor) / recovery * 1000) + 1000)
return math.floor(factor * 1000000)
