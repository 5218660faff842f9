"""The RESERVE script of the shared rate limit: a block of send slots, 1/rate apart, as many as
fall due within the block span at the rate (at least one, at most the block cap); one probe
slot while holding. Its arguments and answer are the dataclasses below (worker/limits/scripts.py
says how they are named once); worker/limits/limiter.py says how the limit behaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.limits.scripts import PROBE_MS, RATE_NOW, ScriptArgs, ScriptReply


@dataclass(frozen=True)
class ReserveArgs(ScriptArgs):
    """ARGV of ``RESERVE``, in this order."""

    now: str  # ms of an injected clock (tests), '' for Redis time
    ceiling_per_s: float  # the job's --rate
    recovery_per_s: float  # share of itself the rate grows by a second near the accepted rate
    min_rate_per_s: float  # the rate never goes below this
    accepted: int  # calls the cloud accepted since this process's last reservation
    fast_recovery_per_s: float  # ... and well below it (under 90% of ``known``)
    start_rate_per_s: float  # a schedule with nothing learnt starts here, ramping
    ramp_per_s: float  # factor the ramping rate grows by a second
    steep_above_per_s: float  # ... and above this rate, taken without a 429:
    steep_ramp_per_s: float  # ... this factor a second
    learnt_share: float  # share of a learnt limit (or measured rate) a new schedule runs at
    probe_unknown_ms: int  # probe spacing while holding at an unknown window
    block_span_ms: float  # one reservation takes the slots falling due within this
    max_block: int  # ... but at most this many
    horizon_ms: float  # no slot is booked further ahead: callers ask again instead
    # The best 429-free rate remembered for the schedule (``keys.rate_best``; 0: none): a new
    # schedule with nothing learnt starts there (if above the start rate), ramping.
    remembered_per_s: float


@dataclass(frozen=True)
class Reservation(ScriptReply):
    """What ``RESERVE`` answers, in this order."""

    wait_ms: float  # until the first slot; with no slot granted, until asking again is worth it
    rate_per_s: float  # the schedule's effective rate now
    granted: int  # slots reserved (0: none, ask again after ``wait_ms``)
    first_ms: float  # the first slot's time (Redis ms)
    limit_count: int  # the limit the cloud named (0: none)
    window_ms: float  # ... its window
    holding: bool  # a window's quota is spent: one probe slot at a time
    resumed: bool  # this reservation ended a hold (it reported an accepted call)
    # Calls accepted in the second before last (Redis time) if neither it nor the last saw a
    # 429 (0 otherwise, or when this reservation reported no accepted call): a rate the cloud
    # took without a 429, for ``keys.rate_best``. That second is taken, not the last, because
    # the limiters report their accepted calls with their next reservation, a little late.
    clean_per_s: float


# KEYS: bucket, memory, accepted-per-second prefix, throttled-per-second prefix (the second,
# on Redis time, is appended here: no caller knows it).
# ARGV: ``ReserveArgs``, named ``argv.<field>``. Returns: ``Reservation``, through ``reply``.
RESERVE = (
    ReserveArgs.lua()
    + Reservation.lua()
    + RATE_NOW
    + PROBE_MS
    + """
local ceiling = tonumber(argv.ceiling_per_s)
local learnt_share = tonumber(argv.learnt_share)
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
    rate = learnt_share * limit * 1000 / window_ms
    redis.call('HSET', KEYS[1], 'limit', m[1], 'window_ms', m[2])
  elseif tonumber(m[3]) then
    rate = tonumber(m[3]) * learnt_share
    redis.call('HSET', KEYS[1], 'known', m[3])
  else
    -- Nothing says the limit is low: from the best rate run at without a 429, if any, ramping.
    rate = math.max(tonumber(argv.start_rate_per_s), tonumber(argv.remembered_per_s))
    ramp = true
    redis.call('HSET', KEYS[1], 'ramp', '1')
  end
end
if limit then ceiling = math.min(ceiling, learnt_share * limit * 1000 / window_ms) end
local tat = math.max(tonumber(h[1]) or now, now)
local holding, resumed = h[8] == '1', 0
local accepted, clean = tonumber(argv.accepted), 0
if accepted > 0 then
  local s = math.floor(now / 1000)
  redis.call('INCRBY', KEYS[3] .. s, accepted)
  redis.call('EXPIRE', KEYS[3] .. s, 10)
  if not redis.call('GET', KEYS[4] .. (s - 2)) and not redis.call('GET', KEYS[4] .. (s - 1)) then
    clean = tonumber(redis.call('GET', KEYS[3] .. (s - 2)) or '0')
  end
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
elseif ramp and rate >= tonumber(argv.steep_above_per_s) then
  -- Past the rates most limits sit at with no 429 yet: the ramp steepens (worker/limits/tuning).
  rate = rate * tonumber(argv.steep_ramp_per_s) ^ dt
elseif ramp then
  rate = rate * tonumber(argv.ramp_per_s) ^ dt
else
  -- Well below the rate the cloud was last seen to accept: climb back fast; near it: slowly.
  local growth = tonumber(argv.recovery_per_s)
  if rate < 0.9 * (tonumber(h[4]) or 0) then growth = tonumber(argv.fast_recovery_per_s) end
  rate = rate * (1 + growth * dt)
end
rate = math.max(math.min(ceiling, rate), tonumber(argv.min_rate_per_s))
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], 3600000)
local answer = {rate_per_s = tostring(rate), limit_count = tostring(limit or 0),
  window_ms = tostring(window_ms or 0), holding = holding and 1 or 0, resumed = resumed,
  clean_per_s = tostring(clean)}
if holding then
  -- The window's quota is spent: one probe call at a time, spaced, until one is accepted.
  local probe_at = tonumber(h[9]) or now
  if now < probe_at then
    answer.wait_ms, answer.granted, answer.first_ms = tostring(probe_at - now), 0, '0'
    return reply(answer)
  end
  redis.call('HSET', KEYS[1], 'probe_at',
    tostring(now + probe_ms(window_ms, tonumber(argv.probe_unknown_ms))))
  answer.wait_ms, answer.granted, answer.first_ms = '0', 1, tostring(now)
  return reply(answer)
end
local horizon = tonumber(argv.horizon_ms)
if tat - now > horizon then
  -- Booked far enough ahead: a slot booked now would keep today's rate however it changes.
  answer.wait_ms, answer.granted, answer.first_ms = tostring(tat - now - horizon), 0, '0'
  return reply(answer)
end
local slots = math.floor(rate * tonumber(argv.block_span_ms) / 1000)
slots = math.max(1, math.min(tonumber(argv.max_block), slots))
redis.call('HSET', KEYS[1], 'tat', tostring(tat + slots * 1000 / rate))
answer.wait_ms, answer.granted, answer.first_ms = tostring(tat - now), slots, tostring(tat)
return reply(answer)
"""
)
