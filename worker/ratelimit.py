"""One rate limit per (endpoint, identity), shared by every worker through Redis.

The limiter hands out send times rather than yes/no answers: one script call reserves the next
free slot(s) on a schedule kept in Redis (a GCRA "theoretical arrival time" on Redis time), and
the caller sleeps until its slot. N workers together therefore never exceed the rate, and nobody
spins on refusals. In-process limiters (aiolimiter, Celery's ``rate_limit``) cannot hold across
hosts, which is why this one is hand-written.

The rate adapts. A 429 means the cloud's bucket is empty, and the calls it accepted in a whole
second that also saw 429s, while calls came at least at half the rate, are its real rate: the
shared rate is set to ``settle_share`` of the latest such count of the last two seconds
(per-second counts of accepted calls, which each limiter reports with its next reservation, so
at no extra round trip; 429s are counted by this script), cutting by at most
``deep_cut_factor`` at once. Without such a saturated second the rate is cut by
``cut_factor`` (a count taken while workers sat idle, between chunks or in backoff, comes in
low and must not collapse the rate; a CI run saw it fall to a quarter of the limit that way,
and a high count from a second without 429s must not stop a cut either), at most once per
``cut_cooldown_s``, so one burst of 429s counts once. Settling has no cooldown: settling twice
on one count changes nothing, and the first count, which includes the bucket's burst, must give
way to the next as soon as it comes (a CI run with a 1 s cooldown on both kept the rate 40%
above the limit for two more seconds). (Halving only, the rate took four cuts,
about 5 s, to come down from --rate 400 to a 40/s limit, and the 429s of those seconds failed
a test's "< 5% after 5 s" check.) The rate then grows back by
``fast_recovery_per_s`` of itself each second while below 90% of the accepted rate last
measured, then by ``recovery_per_s``, up to the ceiling (``--rate``): probing gently above the
limit, where a token-bucket gateway drains slowly. Plain AIMD (halve, then climb 5%/s) was
measured first at --rate 400 against a 40/s limit: 85% of the limit, 97 429s; settling on the
measured accepted rate: 96%, 103 429s, nearly all in the first two seconds
(bench/ratelimit.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from worker.keys import PREFIX

_NOW_PRECISE = "local t = redis.call('TIME'); local now = t[1] * 1000 + t[2] / 1000\n"

# KEYS: bucket. ARGV: ceiling per s, permits, recovery share per s, min rate, calls accepted
# since this limiter's last reservation, fast recovery share per s.
# Returns {ms to wait before the first permit, effective rate}.
RESERVE = (
    _NOW_PRECISE
    + """
local ceiling = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'updated', 'known')
local rate = tonumber(h[2]) or ceiling
local updated = tonumber(h[3]) or now
-- Well below the rate the cloud was last seen to accept: climb back fast; near it: probe slowly.
local growth = tonumber(ARGV[3])
if rate < 0.9 * (tonumber(h[4]) or 0) then growth = tonumber(ARGV[6]) end
rate = math.min(ceiling, rate * (1 + growth * (now - updated) / 1000))
rate = math.max(rate, tonumber(ARGV[4]))
local tat = math.max(tonumber(h[1]) or now, now)
local slot = tat
tat = tat + (1000 / rate) * tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'tat', tostring(tat), 'rate', tostring(rate), 'updated', tostring(now))
redis.call('PEXPIRE', KEYS[1], 3600000)
if tonumber(ARGV[5]) > 0 then
  local accepted = KEYS[1] .. ':accepted:' .. math.floor(now / 1000)
  redis.call('INCRBY', accepted, tonumber(ARGV[5]))
  redis.call('EXPIRE', accepted, 10)
end
return {tostring(slot - now), tostring(rate)}
"""
)

# KEYS: bucket. ARGV: cut factor, min rate, cooldown ms, settle share, deep cut factor.
# Returns {effective rate, 1 if this call changed it}.
THROTTLED = (
    _NOW_PRECISE
    + """
local second = math.floor(now / 1000)
local throttled = KEYS[1] .. ':throttled:' .. second
redis.call('INCR', throttled)
redis.call('EXPIRE', throttled, 10)
local h = redis.call('HMGET', KEYS[1], 'rate', 'cut_at')
local rate = tonumber(h[1])
if not rate then return {'0', 0} end
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
  target = math.max(rate * tonumber(ARGV[5]), math.min(rate, measured * tonumber(ARGV[4])))
  if target > 0.99 * rate then return {tostring(rate), 0} end
  redis.call('HSET', KEYS[1], 'known', tostring(measured))
else
  -- No measurement: halve, once per burst of 429s.
  if now - cut_at < tonumber(ARGV[3]) then return {tostring(rate), 0} end
  target = rate * tonumber(ARGV[1])
end
rate = math.max(tonumber(ARGV[2]), target)
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'cut_at', tostring(now),
  'updated', tostring(now))
return {tostring(rate), 1}
"""
)

Sleep = Callable[[float], Awaitable[None]]


def bucket_key(endpoint: str, identity: str) -> str:
    """The Redis key of one (endpoint, identity) schedule; hashed, the identity is no secret
    but need not be spelled out in Redis."""
    digest = hashlib.sha256(f"{endpoint}\n{identity}".encode()).hexdigest()[:24]
    return f"{PREFIX}:rate:{digest}"


@dataclass
class SharedRateLimiter:
    """Waits for a send slot on the shared schedule of one (endpoint, identity)."""

    redis: aioredis.Redis
    key: str
    recovery_per_s: float = 0.02
    fast_recovery_per_s: float = 0.25
    cut_factor: float = 0.5
    deep_cut_factor: float = 0.25
    cut_cooldown_s: float = 1.0
    settle_share: float = 0.95
    min_rate_per_s: float = 0.2
    sleep: Sleep = asyncio.sleep

    def __post_init__(self) -> None:
        self._reserve = self.redis.register_script(RESERVE)
        self._throttled = self.redis.register_script(THROTTLED)
        self.effective_rate_per_s = 0.0
        self._accepted = 0

    def accepted(self) -> None:
        """Note a call the cloud accepted (any answer but 429); reported with the next permit."""
        self._accepted += 1

    async def acquire(self, ceiling_per_s: float) -> float:
        """Wait for one permit; return the effective rate it was granted at."""
        accepted, self._accepted = self._accepted, 0
        wait_ms, rate = await self._reserve(
            keys=[self.key],
            args=[
                ceiling_per_s,
                1,
                self.recovery_per_s,
                self.min_rate_per_s,
                accepted,
                self.fast_recovery_per_s,
            ],
        )
        self.effective_rate_per_s = float(rate)
        if float(wait_ms) > 0:
            await self.sleep(float(wait_ms) / 1000)
        return self.effective_rate_per_s

    async def throttled(self) -> tuple[float, bool]:
        """Report a 429: cut the shared rate. Returns (effective rate, whether this call cut)."""
        rate, cut = await self._throttled(
            keys=[self.key],
            args=[
                self.cut_factor,
                self.min_rate_per_s,
                int(self.cut_cooldown_s * 1000),
                self.settle_share,
                self.deep_cut_factor,
            ],
        )
        self.effective_rate_per_s = float(rate)
        return self.effective_rate_per_s, bool(cut)
