"""The shared limiter on a real Redis: spacing, sharing, cuts on 429 and recovery."""

from __future__ import annotations

import itertools
from typing import Any

from worker.ratelimit import SharedRateLimiter, bucket_key


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_permits_are_spaced_at_the_rate_across_limiters(aredis: Any) -> None:
    """Two limiters (two workers) on one key share one schedule: 20 permits at 10/s span 2 s."""
    key = bucket_key("https://ims.example", "ak:A")
    sleeps = RecordingSleep()
    one = SharedRateLimiter(aredis, key, sleep=sleeps)
    two = SharedRateLimiter(aredis, key, sleep=sleeps)
    for _ in range(10):
        await one.acquire(10)
        await two.acquire(10)
    waits = sorted(sleeps.waits)
    assert len(waits) == 19  # the first permit is free
    assert 1.85 <= waits[-1] <= 1.95
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert all(0.08 <= gap <= 0.12 for gap in gaps)


async def test_identities_have_separate_schedules(aredis: Any) -> None:
    sleeps = RecordingSleep()
    a = SharedRateLimiter(aredis, bucket_key("e", "ak:A"), sleep=sleeps)
    b = SharedRateLimiter(aredis, bucket_key("e", "ak:B"), sleep=sleeps)
    await a.acquire(1)
    await b.acquire(1)
    assert sleeps.waits == []


async def test_a_429_halves_the_rate_once_per_cooldown(aredis: Any) -> None:
    key = bucket_key("e", "ak:C")
    limiter = SharedRateLimiter(aredis, key, sleep=RecordingSleep(), cut_cooldown_s=60)
    await limiter.acquire(40)
    assert await limiter.throttled() == (20.0, True)
    assert await limiter.throttled() == (20.0, False)  # within the cooldown: one cut per burst
    assert await limiter.acquire(40) < 21


async def test_the_rate_recovers_towards_the_ceiling(aredis: Any) -> None:
    key = bucket_key("e", "ak:D")
    limiter = SharedRateLimiter(aredis, key, sleep=RecordingSleep(), recovery_per_s=0.05)
    await limiter.acquire(40)
    await limiter.throttled()
    updated = float(await aredis.hget(key, "updated"))
    await aredis.hset(key, "updated", str(updated - 4000))  # pretend the cut was 4 s ago
    assert 23.5 < await limiter.acquire(40) < 24.5  # 20 * (1 + 0.05 * 4), then on to 40
    await aredis.hset(key, "updated", "0")
    assert await limiter.acquire(40) == 40.0
