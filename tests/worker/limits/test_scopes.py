"""Schedules per scope: a 429 naming ``policy ip`` or ``policy api`` moves a limiter's calls
to that scope's schedule (per egress group, or one for everyone), each keeping what it learnt.
On a real Redis with an injected clock: nothing really sleeps."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any

import pytest

from tests.helpers import Clock
from worker import keys
from worker.cloud.outcomes import classify_response
from worker.jobs import JobOptions
from worker.limits.limiter import SharedRateLimiter
from worker.limits.retrying import Sent, call_under_rate
from worker.limits.scopes import Schedules
from worker.model import CloudLimit, Scope

PER_SECOND = CloudLimit(40, 1)


def scoped(aredis: Any, clock: Clock, *, egress: str, identity: str = "ak:A") -> SharedRateLimiter:
    schedules = Schedules("https://ims", identity, egress_id=egress)
    return SharedRateLimiter(
        aredis,
        schedules.key(Scope.USER),
        sleep=clock.sleep,
        clock_ms=clock,
        schedules=schedules,
    )


async def slots_in_turn(one: SharedRateLimiter, two: SharedRateLimiter) -> list[float]:
    return [(await limiter.acquire(400)).slot_ms for limiter in (one, two, one, two)]


async def test_two_egress_groups_named_by_an_ip_429_get_a_schedule_each(aredis: Any) -> None:
    """Same credentials on two hosts: one schedule until the 429 says ``policy ip``; then each
    host's calls go on its own group's schedule, each learning the limit and starting at it."""
    clock = Clock()
    a, b = scoped(aredis, clock, egress="host-a"), scoped(aredis, clock, egress="host-b")
    first, second = await a.acquire(400), await b.acquire(400)
    # One schedule: b's block follows a's (at 80/s, two slots 12.5 ms apart in 25 ms).
    assert second.slot_ms == pytest.approx(first.slot_ms + 25)
    for limiter, permit in ((a, first), (b, second)):
        answer = await limiter.throttled(permit, PER_SECOND, Scope.IP)
        assert answer.learned == PER_SECOND
        assert answer.rate_per_s == pytest.approx(38)
    assert (a.scope, b.scope) == (Scope.IP, Scope.IP)
    assert a.schedule_key != b.schedule_key != a.key
    clock.advance(1)
    slots = await slots_in_turn(a, b)
    assert slots[0] == slots[1]  # apart: side by side
    assert slots[2] == slots[3]
    assert slots[2] - slots[0] == pytest.approx(1000 / 38)  # each at the limit learnt
    for limiter in (a, b):
        memory = await aredis.hgetall(keys.rate_memory(limiter.schedule_key))
        assert memory == {"limit": "40", "window_ms": "1000"}


async def test_one_egress_group_shares_one_ip_schedule(aredis: Any) -> None:
    """Hosts behind one NAT gateway set one TAGSWEEP_EGRESS_ID: one allowance between them."""
    clock = Clock()
    a, b = scoped(aredis, clock, egress="nat-1"), scoped(aredis, clock, egress="nat-1")
    for limiter in (a, b):
        await limiter.throttled(await limiter.acquire(400), PER_SECOND, Scope.IP)
    assert a.schedule_key == b.schedule_key
    clock.advance(1)
    slots = await slots_in_turn(a, b)
    assert [y - x for x, y in itertools.pairwise(slots)] == pytest.approx([1000 / 38] * 3)


async def test_an_api_429_puts_every_identity_and_group_on_one_schedule(aredis: Any) -> None:
    clock = Clock()
    a = scoped(aredis, clock, egress="host-a", identity="ak:A")
    b = scoped(aredis, clock, egress="host-b", identity="ak:B")
    for limiter in (a, b):
        await limiter.throttled(await limiter.acquire(400), PER_SECOND, Scope.API)
    assert a.schedule_key == b.schedule_key == Schedules("https://ims", "", "").key(Scope.API)


async def test_each_schedule_keeps_the_limit_it_learnt(aredis: Any) -> None:
    """The user schedule's limit (200 per 5 min) is not the ip schedule's (40/s)."""
    clock = Clock()
    limiter = scoped(aredis, clock, egress="host-a")
    await limiter.throttled(await limiter.acquire(400), CloudLimit(200, 300), Scope.USER)
    assert limiter.scope is Scope.USER
    await limiter.throttled(None, PER_SECOND, Scope.IP)
    user = await aredis.hgetall(keys.rate_memory(limiter.key))
    ip = await aredis.hgetall(keys.rate_memory(limiter.schedule_key))
    assert (user["limit"], ip["limit"]) == ("200", "40")


async def test_a_limiter_without_schedules_stays_on_its_own_whatever_the_429_says(
    aredis: Any,
) -> None:
    clock = Clock()
    limiter = SharedRateLimiter(
        aredis, keys.rate_bucket("e", "ak:A"), sleep=clock.sleep, clock_ms=clock
    )
    await limiter.throttled(await limiter.acquire(400), PER_SECOND, Scope.IP)
    assert (limiter.scope, limiter.schedule_key) == (Scope.USER, limiter.key)


async def test_the_retry_loop_hands_the_scope_of_a_429_to_the_limiter(aredis: Any) -> None:
    """A 429 body saying ``policy ip`` (the gateway's words) moves the call's next attempt."""
    body = (
        b'{"error_msg":"The throttling threshold has been reached: policy ip over '
        b'ratelimit,limit:40,time:1 second","error_code":"APIGW.0308"}'
    )
    answers = [
        classify_response(429, {}, body, latency_ms=1),
        classify_response(204, {}, b"", latency_ms=1),
    ]

    class Call:
        async def ready(self) -> bool:
            return True

        async def stopped(self) -> bool:
            return False

        async def call(self) -> Any:
            return answers.pop(0)

        async def throttled(self, throttling: Any) -> None:
            return None

        def retrying(self, outcome: Any, attempt: int, delay_s: float) -> None:
            return None

    clock = Clock()
    limiter = scoped(aredis, clock, egress="host-a")
    sent = await call_under_rate(
        limiter,
        Call(),
        policy=JobOptions(rate_per_s=400),
        clock=lambda: 0.0,
        sleep=clock.sleep,
        rng=random.Random(1),
    )
    assert isinstance(sent, Sent)
    assert sent.outcome.http_status == 204
    assert limiter.scope is Scope.IP
    assert sent.attempts == 2


def test_the_schedule_keys_of_ims_users_are_those_they_had_before_scopes() -> None:
    """What was learnt for an (endpoint, identity) in the last 30 days is still found; other
    APIs and scopes have keys of their own."""
    digest = hashlib.sha256(b"https://ims\nak:A").hexdigest()[:24]
    assert keys.rate_bucket("https://ims", "ak:A") == f"tagsweep:rate:{digest}"
    named = {
        keys.rate_bucket("https://ims", "ak:A", api=api, scope=scope)
        for api in ("ims", "tms")
        for scope in ("user", "ip", "api")
    }
    assert len(named) == 6
