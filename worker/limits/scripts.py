"""Lua scripts of the shared rate limit: one atomic step each on Redis time.

worker/limits/limiter.py says how the limit behaves; the keys are built in worker/keys.py
(``rate_bucket``, ``rate_memory``, ``rate_accepted``, ``rate_throttled``) and passed in KEYS.
Times are in ms, with a fraction (rates of hundreds a second need it). ``ARGV[1]`` may give
the time instead of Redis (tests: an injected clock); empty in production.
"""

from __future__ import annotations

_RATE_NOW = """
local now = tonumber(ARGV[1])
if not now then local t = redis.call('TIME'); now = t[1] * 1000 + t[2] / 1000 end
"""

# How long the limiter waits between probe calls while a window's quota is spent: a thirtieth
# of the window (at most ~3% of a window lost finding its end), within 0.1 s .. 10 s.
_PROBE_MS = """
local function probe_ms(window_ms, unknown_ms)
  if not window_ms then return unknown_ms end
  return math.min(10000, math.max(100, window_ms / 30))
end
"""

# Reserve a block of send slots, 1/rate apart: as many as fall due within the block span at
# the rate (at least one, at most the block cap); one probe slot while holding.
# KEYS: bucket, memory, accepted-per-second prefix, throttled-per-second prefix (the second,
# on Redis time, is appended here: no caller knows it).
# ARGV: now (or ''), ceiling per s, recovery share per s, min rate, calls accepted since this
# limiter's last reservation, fast recovery share per s, start rate, ramp factor per s, learnt
# share, probe ms for an unknown window, block span ms, block cap (slots), horizon ms (no slot
# is booked further ahead than this: callers ask again instead).
# Returns {ms to wait for the first slot, effective rate, slots granted (0: ask again after the
# wait), the first slot (ms), learnt limit count (0: none), its window ms, 1 if holding, 1 if
# this call ended a hold}.
RESERVE = (
    _RATE_NOW
    + _PROBE_MS
    + """
local ceiling = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'updated', 'known', 'ramp', 'limit',
  'window_ms', 'hold', 'probe_at')
local rate, updated = tonumber(h[2]), tonumber(h[3]) or now
local limit, window_ms = tonumber(h[6]), tonumber(h[7])
local ramp = h[5] == '1'
if not rate then
  -- A new schedule starts from what was learnt about this endpoint and identity, else ramps up.
  local m = redis.call('HMGET', KEYS[2], 'limit', 'window_ms', 'known')
  limit, window_ms = tonumber(m[1]), tonumber(m[2])
  if limit then
    rate = tonumber(ARGV[9]) * limit * 1000 / window_ms
    redis.call('HSET', KEYS[1], 'limit', m[1], 'window_ms', m[2])
  elseif tonumber(m[3]) then
    rate = tonumber(m[3]) * tonumber(ARGV[9])
    redis.call('HSET', KEYS[1], 'known', m[3])
  else
    rate, ramp = tonumber(ARGV[7]), true
    redis.call('HSET', KEYS[1], 'ramp', '1')
  end
end
if limit then ceiling = math.min(ceiling, tonumber(ARGV[9]) * limit * 1000 / window_ms) end
local tat = math.max(tonumber(h[1]) or now, now)
local holding, resumed = h[8] == '1', 0
if tonumber(ARGV[5]) > 0 then
  local accepted = KEYS[3] .. math.floor(now / 1000)
  redis.call('INCRBY', accepted, tonumber(ARGV[5]))
  redis.call('EXPIRE', accepted, 10)
  redis.call('HSET', KEYS[1], 'streak', '0')
  if holding then
    -- The cloud accepts calls again: the spent window is over, send at the rate again.
    holding, resumed = false, 1
    redis.call('HSET', KEYS[1], 'hold', '0', 'released_at', tostring(now))
  end
end
local dt = math.max(0, now - updated) / 1000
if holding then
  dt = 0
elseif ramp then
  rate = rate * tonumber(ARGV[8]) ^ dt
else
  -- Well below the rate the cloud was last seen to accept: climb back fast; near it: slowly.
  local growth = tonumber(ARGV[3])
  if rate < 0.9 * (tonumber(h[4]) or 0) then growth = tonumber(ARGV[6]) end
  rate = rate * (1 + growth * dt)
end
rate = math.max(math.min(ceiling, rate), tonumber(ARGV[4]))
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], 3600000)
local answer = {tostring(limit or 0), tostring(window_ms or 0)}
if holding then
  -- The window's quota is spent: one probe call at a time, spaced, until one is accepted.
  local probe_at = tonumber(h[9]) or now
  if now < probe_at then
    return {tostring(probe_at - now), tostring(rate), 0, '0', answer[1], answer[2], 1, 0}
  end
  redis.call('HSET', KEYS[1], 'probe_at', tostring(now + probe_ms(window_ms, tonumber(ARGV[10]))))
  return {'0', tostring(rate), 1, tostring(now), answer[1], answer[2], 1, 0}
end
local horizon = tonumber(ARGV[13])
if tat - now > horizon then
  -- Booked far enough ahead: a slot booked now would keep today's rate however it changes.
  return {tostring(tat - now - horizon), tostring(rate), 0, '0', answer[1], answer[2], 0, resumed}
end
local slots = math.floor(rate * tonumber(ARGV[11]) / 1000)
slots = math.max(1, math.min(tonumber(ARGV[12]), slots))
redis.call('HSET', KEYS[1], 'tat', tostring(tat + slots * 1000 / rate))
return {tostring(tat - now), tostring(rate), slots, tostring(tat), answer[1], answer[2], 0, resumed}
"""
)

# Report a 429. KEYS: as RESERVE's. ARGV: now (or ''), cut factor, min rate, cooldown ms,
# settle share, deep cut factor, slot of the throttled call (ms, 0: unknown), learnt limit
# count (0: the message named none), its window ms, learnt share, ms without an accepted call
# after which a window counts as spent, probe ms for an unknown window, memory TTL s.
# Returns {effective rate, 1 if this call changed the rate, 1 if it learnt a new limit,
# 1 if holding (the window's quota is spent), 1 if this call started the hold, 1 if the 429
# is no fault of the call's row (the limit is known, a window is spent, or the call was sent
# before the last hold ended)}.
THROTTLED = (
    _RATE_NOW
    + _PROBE_MS
    + """
local second = math.floor(now / 1000)
local throttled = KEYS[4] .. second
redis.call('INCR', throttled)
redis.call('EXPIRE', throttled, 10)
local h = redis.call('HMGET', KEYS[1], 'rate', 'cut_at', 'limit', 'window_ms', 'hold',
  'released_at', 'streak_since')
local rate = tonumber(h[1])
if not rate then return {'0', 0, 0, 0, 0, 0} end
redis.call('HDEL', KEYS[1], 'ramp')
local streak = redis.call('HINCRBY', KEYS[1], 'streak', 1)
if streak == 1 then redis.call('HSET', KEYS[1], 'streak_since', tostring(now)) end
local streak_since = tonumber(h[7]) or now
if streak == 1 then streak_since = now end
-- A call sent before the last hold ended says nothing about the window now.
local sent = tonumber(ARGV[7])
local stale = sent > 0 and sent < (tonumber(h[6]) or 0)
local limit, window_ms = tonumber(h[3]), tonumber(h[4])
local holding = h[5] == '1'
local function hold()
  redis.call('HSET', KEYS[1], 'hold', '1',
    'probe_at', tostring(now + probe_ms(window_ms, tonumber(ARGV[12]))))
  return {tostring(rate), 0, 0, 1, 1, 1}
end
local learned, cut = 0, 0
local named = tonumber(ARGV[8])
if named > 0 and (named ~= limit or tonumber(ARGV[9]) ~= window_ms) then
  limit, window_ms, learned = named, tonumber(ARGV[9]), 1
  redis.call('HSET', KEYS[1], 'limit', ARGV[8], 'window_ms', ARGV[9])
  redis.call('HSET', KEYS[2], 'limit', ARGV[8], 'window_ms', ARGV[9])
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[13]))
end
if limit then
  -- The limit is known: the ceiling comes from it, and a 429 at it means the window's quota
  -- is spent, so all hold back (no cut: the rate is right, the window is empty).
  local ceiling = tonumber(ARGV[10]) * limit * 1000 / window_ms
  if learned == 1 or rate > ceiling then
    rate, cut = ceiling, 1
    redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'updated', tostring(now))
  end
  if not holding and not stale then
    hold()
    return {tostring(rate), cut, learned, 1, 1, 1}
  end
  return {tostring(rate), cut, learned, holding and 1 or 0, 0, 1}
end
if holding then return {tostring(rate), 0, 0, 1, 0, 1} end
if stale then return {tostring(rate), 0, 0, 0, 0, 1} end
-- Unknown limit: no call accepted for a while, only 429s: a window's quota is spent.
if streak >= 2 and now - streak_since >= tonumber(ARGV[11]) then return hold() end
local cut_at = tonumber(h[2]) or 0
-- The latest of the last two whole seconds that was saturated: it saw 429s while calls came at
-- least at half the rate (not a second of workers idle in backoff). What the cloud accepted in
-- it is its real rate (an over-count by the bucket's burst in the first such second).
local measured = nil
for s = second - 1, second - 2, -1 do
  local ok = tonumber(redis.call('GET', KEYS[3] .. s) or '0')
  local refused = tonumber(redis.call('GET', KEYS[4] .. s) or '0')
  if measured == nil and refused > 0 and ok + refused >= 0.5 * rate then measured = ok end
end
local target
if measured and measured > 0 then
  -- Settle just under the measured rate, cutting by at most deep_cut_factor at once. Settling
  -- again on the same count changes nothing, so this needs no cooldown: a newer measurement is
  -- taken as soon as it comes, which the first one (burst included) needs.
  target = math.max(rate * tonumber(ARGV[6]), math.min(rate, measured * tonumber(ARGV[5])))
  if target > 0.99 * rate then return {tostring(rate), 0, 0, 0, 0, 0} end
  redis.call('HSET', KEYS[1], 'known', tostring(measured))
  redis.call('HSET', KEYS[2], 'known', tostring(measured))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[13]))
else
  -- No measurement: halve, once per burst of 429s.
  if now - cut_at < tonumber(ARGV[4]) then return {tostring(rate), 0, 0, 0, 0, 0} end
  target = rate * tonumber(ARGV[2])
end
rate = math.max(tonumber(ARGV[3]), target)
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'cut_at', tostring(now),
  'updated', tostring(now))
return {tostring(rate), 1, 0, 0, 0, 0}
"""
)
