"""Lua scripts: each is one atomic step on Redis time, so workers on many hosts agree.

Times are Redis server time in milliseconds (``TIME``), never a worker's clock.
"""

from __future__ import annotations

_NOW = "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# Record rows' results once each, count them, count the requests for the circuit breaker, and
# finish the job when the last row of all is final: ``completed`` when every row ended in one of
# the job's goal statuses, else ``completed_with_failures``. A row is final once its bit in the
# job's ``final`` bitmap is set: SETBIT returns the old bit, so a row already final (a chunk
# delivered twice, a flush sent again) is neither counted nor written again. Each entry's rows
# newly made final are appended, with the entry's result, to its chunk's results list.
# Also adds the calls made since the worker last recorded (calls, 429 answers, retries: the
# exporter's per-job counters, carried here so that they cost no round trip of their own).
# KEYS: final, counts, job, then the results lists the entries name.
# ARGV: requests (count), failed requests (count), goal statuses (space separated), calls, 429s,
# retries, then per entry: index of its list among the lists (1-based), status, refs (comma
# separated), result JSON.
# Returns {rows newly recorded, rows final in all, requests, failed requests, finished state}.
RECORD_RESULTS = (
    _NOW
    + """
local requests = redis.call('HINCRBY', KEYS[3], 'requests', tonumber(ARGV[1]))
local failures = redis.call('HINCRBY', KEYS[3], 'failed_requests', tonumber(ARGV[2]))
local tally = {'calls', 'throttled', 'retries'}
for i = 1, 3 do
  if tonumber(ARGV[3 + i]) > 0 then redis.call('HINCRBY', KEYS[3], tally[i], ARGV[3 + i]) end
end
local goals = {}
for status in string.gmatch(ARGV[3], '%S+') do goals[status] = true end
local added = 0
for i = 7, #ARGV, 4 do
  local fresh = {}
  for ref in string.gmatch(ARGV[i + 2], '%d+') do
    if redis.call('SETBIT', KEYS[1], tonumber(ref), 1) == 0 then fresh[#fresh + 1] = ref end
  end
  if #fresh > 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[i + 1], #fresh)
    local entry = table.concat(fresh, ',') .. ' ' .. ARGV[i + 3]
    redis.call('RPUSH', KEYS[3 + tonumber(ARGV[i])], entry)
    added = added + #fresh
  end
end
local done, good = 0, 0
local counts = redis.call('HGETALL', KEYS[2])
for i = 1, #counts, 2 do
  local n = tonumber(counts[i + 1])
  done = done + n
  if goals[counts[i]] then good = good + n end
end
local total = tonumber(redis.call('HGET', KEYS[3], 'total') or '-1')
local finished = ''
if added > 0 and done >= total then
  local state = redis.call('HGET', KEYS[3], 'state')
  if state == 'queued' or state == 'running' then
    finished = 'completed'
    if good < done then finished = 'completed_with_failures' end
    redis.call('HSET', KEYS[3], 'state', finished, 'finished_at', now)
  end
end
return {added, done, requests, failures, finished}
"""
)

# Keep what reads found for rows, the first observation of each row only (its bit in the
# ``observed`` bitmap): a chunk worked again after a crash between a backup read and its delete
# keeps the value from before the delete. KEYS: observed bitmap, the chunk's observed list.
# ARGV: ref, JSON value, ... Returns the refs observed before (their kept values are in the list).
OBSERVE = """
local refs, values, seen = {}, {}, {}
for i = 1, #ARGV, 2 do
  if redis.call('SETBIT', KEYS[1], tonumber(ARGV[i]), 1) == 0 then
    refs[#refs + 1] = ARGV[i]
    values[#values + 1] = ARGV[i + 1]
  else
    seen[#seen + 1] = ARGV[i]
  end
end
if #refs > 0 then
  redis.call('RPUSH', KEYS[2], table.concat(refs, ',') .. ' [' .. table.concat(values, ',') .. ']')
end
return seen
"""

# Take a chunk's lease. KEYS: leases, owners, done-chunks. ARGV: member, owner, ttl ms, chunk.
# Returns 'done' (nothing left to do), 'busy' (a live lease is held by another), or 'ok'.
ACQUIRE_LEASE = (
    _NOW
    + """
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return 'done' end
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= '' and owner ~= ARGV[2] and expires and tonumber(expires) > now then
  return 'busy'
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
"""
)

# Extend a lease still held. KEYS: leases, owners. ARGV: member, owner, ttl ms.
RENEW_LEASE = (
    _NOW
    + """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 'lost' end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 'ok'
"""
)

# Mark a chunk done (when complete) and drop its lease if still ours.
# KEYS: leases, owners, done-chunks. ARGV: member, owner, chunk, complete (1/0).
RELEASE_LEASE = """
if ARGV[4] == '1' then redis.call('SADD', KEYS[3], ARGV[3]) end
if redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 'ok'
"""

# Take back expired leases: each is given a grace period and no owner, and returned so that the
# caller re-dispatches it. If the caller dies first, the entry expires again and another reaper
# takes it: nothing is lost. KEYS: leases, owners. ARGV: grace ms, limit.
REAP_LEASES = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(expired) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
  redis.call('HSET', KEYS[2], member, '')
end
return expired
"""
)

# A queued job becomes running (with its start time) when its first chunk starts.
MARK_RUNNING = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at', now)
end
return redis.call('HGET', KEYS[1], 'state')
"""
)

# Abort or cancel a job that is still going; keeps the first reason.
STOP_JOB = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'running' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'reason', ARGV[2], 'finished_at', now)
  return 1
end
return 0
"""
)

# The shared rate limit of one (endpoint, identity): worker/ratelimit.py says how it behaves.
# Times in ms, with a fraction (rates of hundreds a second need it). ``ARGV[1]`` may give the
# time instead of Redis (tests: an injected clock); empty in production.
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

# Reserve one send slot. KEYS: bucket, memory. ARGV: now (or ''), ceiling per s, recovery
# share per s, min rate, calls accepted since this limiter's last reservation, fast recovery
# share per s, start rate, ramp factor per s, learnt share, probe ms for an unknown window.
# Returns {ms to wait, effective rate, 1 if a slot was granted (0: ask again after the wait),
# the slot (ms), learnt limit count (0: none), its window ms, 1 if holding, 1 if this call
# ended a hold}.
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
  local accepted = KEYS[1] .. ':accepted:' .. math.floor(now / 1000)
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
redis.call('HSET', KEYS[1], 'tat', tostring(tat + 1000 / rate))
return {tostring(tat - now), tostring(rate), 1, tostring(tat), answer[1], answer[2], 0, resumed}
"""
)

# Report a 429. KEYS: bucket, memory. ARGV: now (or ''), cut factor, min rate, cooldown ms,
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
local throttled = KEYS[1] .. ':throttled:' .. second
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
  local ok = tonumber(redis.call('GET', KEYS[1] .. ':accepted:' .. s) or '0')
  local refused = tonumber(redis.call('GET', KEYS[1] .. ':throttled:' .. s) or '0')
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
