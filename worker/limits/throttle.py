"""The THROTTLED script of the shared rate limit: a 429 reported to the schedule (a cut, a
limit learnt, a hold). Its arguments and answer are the dataclasses below
(worker/limits/scripts.py says how they are named once); worker/limits/limiter.py says how the
limit behaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.limits.scripts import PROBE_MS, RATE_NOW, ScriptArgs, ScriptReply
from worker.model import CloudLimit


@dataclass(frozen=True)
class ThrottledArgs(ScriptArgs):
    """ARGV of ``THROTTLED``, in this order."""

    now: str  # ms of an injected clock (tests), '' for Redis time
    cut_factor: float  # a cut without a measurement multiplies the rate by this
    min_rate_per_s: float  # the rate never goes below this
    cut_cooldown_ms: int  # at most one such cut this often
    settle_share: float  # a measured accepted rate is settled at this share of it
    deep_cut_factor: float  # ... cutting by at most this factor at once
    sent_ms: float  # the slot of the throttled call (Redis ms; 0: unknown)
    limit_count: int  # the limit the 429's message named (0: none)
    window_ms: int  # ... its window
    learnt_share: float  # the ceiling is this share of a named limit
    spent_after_ms: int  # no accepted call for this long while 429s came: a window is spent
    probe_unknown_ms: int  # probe spacing while holding at an unknown window
    memory_ttl_s: int  # what the cloud taught is kept this long (``keys.rate_memory``)


@dataclass(frozen=True)
class Throttled(ScriptReply):
    """What ``THROTTLED`` answers, in this order."""

    rate_per_s: float  # the schedule's effective rate now
    cut: bool  # this report changed the rate
    learned: bool  # it taught a limit new to the schedule
    holding: bool  # a window's quota is spent
    held: bool  # this report started the hold
    free: bool  # no fault of the call's row: the limit is known, a window is spent, or the
    # call was sent before the last hold ended

    def throttling(self, limit: CloudLimit | None) -> Throttling:
        """What the limiter tells its caller, for a 429 whose message named ``limit``."""
        taught = limit if self.learned else None
        return Throttling(self.rate_per_s, self.cut, taught, self.holding, self.held, self.free)


@dataclass(frozen=True)
class Throttling:
    """What reporting a 429 did to the shared schedule."""

    rate_per_s: float
    cut: bool  # this report changed the rate
    learned: CloudLimit | None  # the limit this report taught (new to the schedule)
    holding: bool  # the window's quota is spent: all workers hold back
    held: bool  # this report started the hold
    free: bool  # no fault of the row (a known limit, a spent window, or news from before)


# KEYS: as RESERVE's (worker/limits/reserve.py).
# ARGV: ``ThrottledArgs``, named ``argv.<field>``. Returns: ``Throttled``, through ``reply``.
THROTTLED = (
    ThrottledArgs.lua()
    + Throttled.lua()
    + RATE_NOW
    + PROBE_MS
    + """
local second = math.floor(now / 1000)
local throttled = KEYS[4] .. second
redis.call('INCR', throttled)
redis.call('EXPIRE', throttled, 10)
local h = redis.call('HMGET', KEYS[1], 'rate', 'cut_at', 'limit', 'window_ms', 'hold',
  'released_at', 'streak_since')
local rate = tonumber(h[1])
local function answer(cut, learned, holding, held, free)
  return reply{rate_per_s = tostring(rate or 0), cut = cut, learned = learned,
    holding = holding, held = held, free = free}
end
local named = tonumber(argv.limit_count)
local memory_ttl_s = tonumber(argv.memory_ttl_s)
if not rate then
  -- No reservation yet (a process moved to this scope's schedule on this 429): what the 429
  -- named is what the schedule starts from on its first reservation.
  if named == 0 then return answer(0, 0, 0, 0, 0) end
  local m = redis.call('HMGET', KEYS[2], 'limit', 'window_ms')
  redis.call('HSET', KEYS[2], 'limit', argv.limit_count, 'window_ms', argv.window_ms)
  redis.call('EXPIRE', KEYS[2], memory_ttl_s)
  rate = tonumber(argv.learnt_share) * named * 1000 / tonumber(argv.window_ms)
  local new = m[1] ~= argv.limit_count or m[2] ~= argv.window_ms
  return answer(0, new and 1 or 0, 0, 0, 1)
end
redis.call('HDEL', KEYS[1], 'ramp')
local streak = redis.call('HINCRBY', KEYS[1], 'streak', 1)
if streak == 1 then redis.call('HSET', KEYS[1], 'streak_since', tostring(now)) end
local streak_since = tonumber(h[7]) or now
if streak == 1 then streak_since = now end
-- A call sent before the last hold ended says nothing about the window now.
local sent = tonumber(argv.sent_ms)
local stale = sent > 0 and sent < (tonumber(h[6]) or 0)
local limit, window_ms = tonumber(h[3]), tonumber(h[4])
local holding = h[5] == '1'
local function hold()
  redis.call('HSET', KEYS[1], 'hold', '1',
    'probe_at', tostring(now + probe_ms(window_ms, tonumber(argv.probe_unknown_ms))))
end
local learned, cut = 0, 0
if named > 0 and (named ~= limit or tonumber(argv.window_ms) ~= window_ms) then
  limit, window_ms, learned = named, tonumber(argv.window_ms), 1
  redis.call('HSET', KEYS[1], 'limit', argv.limit_count, 'window_ms', argv.window_ms)
  redis.call('HSET', KEYS[2], 'limit', argv.limit_count, 'window_ms', argv.window_ms)
  redis.call('EXPIRE', KEYS[2], memory_ttl_s)
end
if limit then
  -- The limit is known: the ceiling comes from it, and a 429 at it means the window's quota
  -- is spent, so all hold back (no cut: the rate is right, the window is empty).
  local ceiling = tonumber(argv.learnt_share) * limit * 1000 / window_ms
  if learned == 1 or rate > ceiling then
    rate, cut = ceiling, 1
    redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'updated', tostring(now))
  end
  if not holding and not stale then
    hold()
    return answer(cut, learned, 1, 1, 1)
  end
  return answer(cut, learned, holding and 1 or 0, 0, 1)
end
if holding then return answer(0, 0, 1, 0, 1) end
if stale then return answer(0, 0, 0, 0, 1) end
-- Unknown limit: no call accepted for a while, only 429s: a window's quota is spent.
if streak >= 2 and now - streak_since >= tonumber(argv.spent_after_ms) then
  hold()
  return answer(0, 0, 1, 1, 1)
end
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
  target = math.max(rate * tonumber(argv.deep_cut_factor),
    math.min(rate, measured * tonumber(argv.settle_share)))
  if target > 0.99 * rate then return answer(0, 0, 0, 0, 0) end
  redis.call('HSET', KEYS[1], 'known', tostring(measured))
  redis.call('HSET', KEYS[2], 'known', tostring(measured))
  redis.call('EXPIRE', KEYS[2], memory_ttl_s)
else
  -- No measurement: halve, once per burst of 429s.
  if now - cut_at < tonumber(argv.cut_cooldown_ms) then return answer(0, 0, 0, 0, 0) end
  target = rate * tonumber(argv.cut_factor)
end
rate = math.max(tonumber(argv.min_rate_per_s), target)
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'cut_at', tostring(now),
  'updated', tostring(now))
return answer(1, 0, 0, 0, 0)
"""
)
