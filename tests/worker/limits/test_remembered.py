"""The best 429-free rate of a schedule, remembered (#24): a job starts where the last one ran
without a 429, not at the start rate, when nothing says the limit is low. On a real Redis with an
injected clock: nothing really sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Clock
from worker import keys
from worker.limits.limiter import SharedRateLimiter, bucket_key
from worker.model import CloudLimit
from worker.store.rates import RateMemory

KEY = bucket_key("https://ims", "ak:A")


def limiter_on(aredis: Any, clock: Clock) -> SharedRateLimiter:
    return SharedRateLimiter(aredis, KEY, sleep=clock.sleep, clock_ms=clock)


async def a_second_of(limiter: SharedRateLimiter, clock: Clock, accepted: int) -> None:
    """Report ``accepted`` calls in a second, then let two seconds pass and reserve again
    (the reservation that measures that second). At a ceiling of 20/s each permit is a
    reservation of its own (no block held), so each reports what was accepted before it."""
    clock.advance(1)  # a second of its own
    await limiter.acquire(20)
    for _ in range(accepted):
        limiter.accepted()
    await limiter.acquire(20)  # reports them, in this second
    clock.advance(2)
    limiter.accepted()
    await limiter.acquire(20)


async def test_a_second_without_a_429_is_remembered_and_the_next_job_starts_there(
    aredis: Any,
) -> None:
    clock = Clock()
    await a_second_of(limiter_on(aredis, clock), clock, 300)
    assert await RateMemory(aredis).best_rate(KEY) == 300
    await aredis.delete(KEY)  # the schedule expired: an hour without a call
    next_job = limiter_on(aredis, clock)
    assert (await next_job.acquire(4000)).rate_per_s == 300  # not 20
    clock.advance(0.5)
    assert (await next_job.acquire(4000)).rate_per_s > 600  # still ramping while all succeed


async def test_a_second_that_saw_a_429_is_not_remembered(aredis: Any) -> None:
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    await limiter.acquire(20)
    for _ in range(300):
        limiter.accepted()
    await limiter.throttled(await limiter.acquire(20))
    clock.advance(2.5)
    limiter.accepted()
    await limiter.acquire(20)
    assert await RateMemory(aredis).best_rate(KEY) == 0


async def test_what_a_429_taught_comes_before_the_remembered_rate(aredis: Any) -> None:
    """A named limit (or a measured one) says the limit is low: the next job starts there."""
    clock = Clock()
    await RateMemory(aredis).remember_rate(KEY, 300)
    first = limiter_on(aredis, clock)
    await first.throttled(await first.acquire(1000), CloudLimit(40, 1))
    await aredis.delete(KEY)
    assert (await limiter_on(aredis, clock).acquire(1000)).rate_per_s == pytest.approx(38)


async def test_a_process_tells_the_store_only_a_higher_rate(aredis: Any) -> None:
    """One write per new best of the process, not one per reservation."""
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    await a_second_of(limiter, clock, 300)
    await aredis.delete(keys.rate_best(KEY))
    await a_second_of(limiter, clock, 200)
    assert await RateMemory(aredis).best_rate(KEY) == 0  # 200 < 300 told before: not written
    await a_second_of(limiter, clock, 400)
    assert await RateMemory(aredis).best_rate(KEY) == 400
