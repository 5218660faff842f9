"""The shared limiter on a real Redis: spacing, sharing, cuts on 429 and recovery, limits the
cloud names, spent windows, and the start of a schedule. Nothing really sleeps: the tests with
a ``Clock`` give the scripts its time, and its sleep moves it."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from tests.helpers import Clock
from worker import keys
from worker.limits.limiter import SharedRateLimiter, bucket_key
from worker.limits.tuning import RateTuning
from worker.model import CloudLimit

WINDOW = CloudLimit(600, 30)


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def limiter_on(aredis: Any, clock: Clock, key: str = "e", **options: Any) -> SharedRateLimiter:
    """A limiter on ``clock``; a new schedule starts at 20/s unless ``options`` say otherwise
    (the start of an earlier default, which keeps these tests' figures round)."""
    options.setdefault("start_rate_per_s", 20.0)
    return SharedRateLimiter(
        aredis,
        bucket_key(key, "ak:A"),
        sleep=clock.sleep,
        clock_ms=clock,
        tuning=RateTuning(**options),
    )


async def test_permits_are_spaced_at_the_rate_across_limiters(aredis: Any) -> None:
    """Two limiters (two workers) on one key share one schedule: 20 permits at 10/s span 1.9 s,
    each 0.1 s after the one before, whichever limiter asks."""
    clock = Clock()
    one, two = limiter_on(aredis, clock), limiter_on(aredis, clock)
    start = clock.now_ms
    slots = []
    for _ in range(10):
        slots.append((await one.acquire(10)).slot_ms)
        slots.append((await two.acquire(10)).slot_ms)
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([100] * 19)
    assert clock.now_ms - start == pytest.approx(1900)


async def test_no_slot_is_booked_further_ahead_than_the_horizon(aredis: Any) -> None:
    """Forty callers asking at once at 20/s: only the slots of the next 0.1 s are booked; the
    others are told when to ask again (else they would book two seconds at 20/s, and a rate
    that grows meanwhile, the ramp's, would not be used before those two seconds passed)."""
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    answers = [
        await limiter._reserve(
            keys=limiter._keys, args=limiter.tuning.reserve_args(limiter._now(), 400, 0)
        )
        for _ in range(40)
    ]
    booked = [answer for answer in answers if int(answer[2])]
    assert [float(answer[0]) for answer in booked] == [0, 50, 100]
    assert {float(answer[0]) for answer in answers[3:]} == {50}  # ask again in 50 ms


async def test_callers_waiting_for_the_horizon_cost_one_ask_per_process(aredis: Any) -> None:
    """Thirty callers of one process at once, on real time, on a new schedule (20/s, ramping):
    the later slots are booked at the rate the ramp has reached by then (all thirty booked at
    once would all be at 20/s), and the process asks Redis about once per slot, not once per
    waiting caller and poll."""
    limiter = SharedRateLimiter(aredis, bucket_key("e", "ak:A"))
    before = await script_calls(aredis)
    permits = await asyncio.gather(*(limiter.acquire(400) for _ in range(30)))
    assert await script_calls(aredis) - before <= 60
    assert len({permit.slot_ms for permit in permits}) == 30
    assert max(permit.rate_per_s for permit in permits) > 40  # about 60/s after 0.8 s


async def test_identities_have_separate_schedules(aredis: Any) -> None:
    sleeps = RecordingSleep()
    a = SharedRateLimiter(aredis, bucket_key("e", "ak:A"), sleep=sleeps)
    b = SharedRateLimiter(aredis, bucket_key("e", "ak:B"), sleep=sleeps)
    await a.acquire(1)
    await b.acquire(1)
    assert sleeps.waits == []


async def test_a_429_halves_the_rate_once_per_cooldown(aredis: Any) -> None:
    clock = Clock()
    limiter = limiter_on(aredis, clock, cut_cooldown_s=60, start_rate_per_s=40)
    await limiter.acquire(40)
    first, second = await limiter.throttled(), await limiter.throttled()
    assert (first.rate_per_s, first.cut) == (20.0, True)
    assert (second.rate_per_s, second.cut) == (20.0, False)  # one cut per burst
    assert (await limiter.acquire(40)).rate_per_s < 21


async def test_the_rate_recovers_towards_the_ceiling(aredis: Any) -> None:
    clock = Clock()
    limiter = limiter_on(aredis, clock, recovery_per_s=0.05, start_rate_per_s=40)
    await limiter.acquire(40)
    await limiter.throttled()
    clock.advance(4)
    assert (await limiter.acquire(40)).rate_per_s == pytest.approx(24)  # 20 * (1 + 0.05 * 4)
    clock.advance(1000)
    assert (await limiter.acquire(40)).rate_per_s == 40.0


async def test_a_new_schedule_ramps_up_from_a_modest_rate_until_the_first_429(
    aredis: Any,
) -> None:
    """No stampede: 80/s at first, 32 times more a second up to 100/s, then doubling every
    fifteenth of a second (past the rates most limits sit at), until a 429 ends it."""
    clock = Clock()
    # The default tuning, but a slot a reservation: each acquire asks the schedule.
    limiter = limiter_on(aredis, clock, start_rate_per_s=RateTuning().start_rate_per_s, max_block=1)
    assert (await limiter.acquire(40_000)).rate_per_s == 80
    clock.advance(0.05)
    assert (await limiter.acquire(40_000)).rate_per_s == pytest.approx(80 * 32**0.05)
    clock.advance(0.2)  # from 95 (under 100): gently
    assert (await limiter.acquire(40_000)).rate_per_s == pytest.approx(80 * 32**0.25)
    clock.advance(0.2)  # from 190: steeply
    assert (await limiter.acquire(40_000)).rate_per_s == pytest.approx(80 * 32**0.25 * 8)
    throttled = (await limiter.throttled()).rate_per_s
    assert throttled == pytest.approx(80 * 32**0.25 * 4)
    clock.advance(1)
    assert (await limiter.acquire(40_000)).rate_per_s == pytest.approx(throttled * 1.02)


async def test_a_named_limit_sets_the_ceiling_of_every_limiter_at_once_and_is_told_once(
    aredis: Any,
) -> None:
    clock = Clock()
    one, two = limiter_on(aredis, clock), limiter_on(aredis, clock)
    permit = await one.acquire(200)
    learnt = await one.throttled(permit, WINDOW)
    assert learnt.learned == WINDOW
    assert learnt.rate_per_s == pytest.approx(0.95 * 20)
    again = await two.throttled(permit, WINDOW)
    assert again.learned is None  # logged once, by whoever learnt it first
    one.accepted()
    clock.advance(60)
    answer = await one.acquire(200)
    assert answer.rate_per_s == pytest.approx(19)
    assert one.limit == WINDOW
    clock.advance(3600)  # growth never passes the named limit
    assert (await two.acquire(200)).rate_per_s == pytest.approx(19)
    assert two.limit == WINDOW


async def test_a_spent_window_holds_every_limiter_to_one_spaced_probe_until_one_is_accepted(
    aredis: Any,
) -> None:
    """After a 429 at a named limit of 600/30s: probes a second apart (a thirtieth of the
    window), one at a time, whoever asks; the first accepted one resumes the schedule."""
    clock = Clock()
    one, two = limiter_on(aredis, clock), limiter_on(aredis, clock)
    permit = await one.acquire(200)
    throttling = await one.throttled(permit, WINDOW)
    assert (throttling.holding, throttling.held) == (True, True)
    granted = []
    for limiter in (one, two, one, two):
        await limiter.acquire(200)
        granted.append(clock.now_ms)
        throttled = await limiter.throttled(permit=None, limit=WINDOW)
        assert (throttled.holding, throttled.held) == (True, False)
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert all(gap == pytest.approx(1000) for gap in gaps), gaps
    await two.acquire(200)  # a probe the cloud accepts
    two.accepted()
    start = clock.now_ms
    for _ in range(19):
        await two.acquire(200)
    assert not two.holding
    assert clock.now_ms - start == pytest.approx(1000, rel=0.06)  # 19 permits at 19/s


async def test_at_a_low_rate_a_hold_ends_as_soon_as_a_probe_is_accepted(aredis: Any) -> None:
    """A named limit of 10 calls a minute (0.2/s, a slot every 5 s): the permit after an
    accepted probe is not put off by the probe's slot interval, nor are the probes spaced by
    it rather than by a thirtieth of the window (2 s)."""
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    permit = await limiter.acquire(200)
    await limiter.throttled(permit, CloudLimit(10, 60))  # the window is spent: hold
    probes = []
    for _ in range(2):
        probes.append((await limiter.acquire(200)).slot_ms)
        await limiter.throttled(limit=CloudLimit(10, 60))
    assert probes[1] - probes[0] == pytest.approx(2000)
    await limiter.acquire(200)
    limiter.accepted()
    start = clock.now_ms
    await limiter.acquire(200)
    assert not limiter.holding
    assert clock.now_ms - start < 300


async def test_a_429_of_a_call_sent_before_the_hold_ended_does_not_hold_again(
    aredis: Any,
) -> None:
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    early = await limiter.acquire(200)
    await limiter.throttled(early, WINDOW)
    await limiter.acquire(200)
    limiter.accepted()
    clock.advance(0.01)
    await limiter.acquire(200)  # reports the accepted probe: the hold ends
    assert not limiter.holding
    late = await limiter.throttled(early, WINDOW)  # a straggler sent before
    assert (late.holding, late.free) == (False, True)  # no hold again, and no fault of its row
    fresh = await limiter.acquire(200)
    assert (await limiter.throttled(fresh, WINDOW)).held


async def test_without_a_message_a_second_of_nothing_but_429s_is_a_spent_window(
    aredis: Any,
) -> None:
    """The plain message: the rate adapts as before; but once no call has been accepted for
    a second while 429s came, all hold back, and those 429s no longer count as attempts."""
    clock = Clock()
    limiter = limiter_on(aredis, clock, start_rate_per_s=100)
    permit = await limiter.acquire(100)
    first = await limiter.throttled(permit)
    assert (first.cut, first.holding, first.free) == (True, False, False)
    clock.advance(0.5)
    assert not (await limiter.throttled(await limiter.acquire(100))).holding
    clock.advance(0.6)
    spent = await limiter.throttled(await limiter.acquire(100))
    assert (spent.holding, spent.held, spent.cut, spent.free) == (True, True, False, True)
    rate = spent.rate_per_s
    clock.advance(0.3)
    assert (await limiter.throttled(await limiter.acquire(100))).rate_per_s == rate  # no cut


async def test_a_new_schedule_starts_from_the_limit_learnt_for_its_endpoint_and_identity(
    aredis: Any,
) -> None:
    clock = Clock()
    first = limiter_on(aredis, clock)
    await first.throttled(await first.acquire(200), WINDOW)
    await aredis.delete(first.key)  # the schedule expired: an hour without a call
    again = limiter_on(aredis, clock)
    assert (await again.acquire(200)).rate_per_s == pytest.approx(19)  # no ramp from 20
    assert again.limit == WINDOW
    assert await aredis.ttl(keys.rate_memory(first.key)) > 29 * 24 * 3600
    other = limiter_on(aredis, clock, key="another endpoint")
    assert (await other.acquire(200)).rate_per_s == 20


async def test_a_permit_reserved_before_the_schedule_changed_is_asked_for_again(
    aredis: Any,
) -> None:
    """A caller sleeping until its slot when a 429 teaches the limit does not send then: it
    asks again, and (the window being spent) waits for a probe slot."""
    clock = Clock()
    limiter = limiter_on(aredis, clock, start_rate_per_s=10)
    first = await limiter.acquire(10)
    taught = False

    async def sleep(seconds: float) -> None:
        nonlocal taught
        if not taught:
            taught = True
            await limiter.throttled(first, WINDOW)
        await clock.sleep(seconds)

    limiter.sleep = sleep
    second = await limiter.acquire(10)
    assert second.slot_ms >= first.slot_ms + 1000  # the probe slot, not the 0.1 s one


async def test_a_caller_waiting_out_a_spent_window_stops_when_told(aredis: Any) -> None:
    """A hold may last minutes: a cancelled job's callers stop waiting between polls."""
    clock = Clock()
    limiter = limiter_on(aredis, clock)
    await limiter.throttled(await limiter.acquire(200), CloudLimit(200, 300))
    asked = 0

    async def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked == 3

    assert await limiter.acquire(200, stop=stop) is None
    assert clock.waits == [0.25, 0.25]


async def script_calls(aredis: Any) -> int:
    """Script calls Redis has run (server-wide: nothing else uses a test's Redis meanwhile)."""
    stats = await aredis.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha")
    )


async def test_at_a_high_rate_one_reservation_holds_a_block_of_slots_spaced_at_the_rate(
    aredis: Any,
) -> None:
    """At 400/s a reservation takes the 10 slots of 25 ms (2.5 ms apart) for its process:
    another process's first slot comes after them, and the 11th permit starts a new block."""
    clock = Clock()
    one, two = limiter_on(aredis, clock, start_rate_per_s=400), limiter_on(aredis, clock)
    first = await one.acquire(400)
    other = await two.acquire(400)
    assert other.slot_ms == pytest.approx(first.slot_ms + 25)
    slots = [first.slot_ms] + [(await one.acquire(400)).slot_ms for _ in range(9)]
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([2.5] * 9)
    assert (await one.acquire(400)).slot_ms >= other.slot_ms + 2.5


async def test_at_a_low_rate_each_reservation_is_one_slot_as_before(aredis: Any) -> None:
    """At 40/s (below 80/s) processes asking in turn get slots in turn, 25 ms apart."""
    clock = Clock()
    one, two = limiter_on(aredis, clock, start_rate_per_s=40), limiter_on(aredis, clock)
    slots = [(await limiter.acquire(40)).slot_ms for limiter in (one, two, one, two)]
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([25, 25, 25])


async def test_callers_of_one_process_share_the_block_of_one_reservation(aredis: Any) -> None:
    """Ten callers at once at 400/s: one script call, ten distinct slots 2.5 ms apart."""
    clock = Clock()
    limiter = limiter_on(aredis, clock, start_rate_per_s=400)
    await limiter.acquire(400)
    clock.advance(1)  # the block of that first call is too old now
    before = await script_calls(aredis)
    permits = await asyncio.gather(*(limiter.acquire(400) for _ in range(10)))
    assert await script_calls(aredis) - before == 1
    slots = sorted(permit.slot_ms for permit in permits)
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx([2.5] * 9)


async def test_slots_held_are_dropped_when_a_429_changes_the_schedule(aredis: Any) -> None:
    """After a cut the rest of the block (reserved at the old rate) is not sent: the next
    permit is a new slot after it, at the new rate."""
    clock = Clock()
    limiter = limiter_on(aredis, clock, start_rate_per_s=400)
    first = await limiter.acquire(400)
    assert (await limiter.throttled(first)).cut
    after = await limiter.acquire(400)
    assert after.slot_ms >= first.slot_ms + 25
    assert after.rate_per_s == pytest.approx(200)


async def test_held_slots_are_handed_out_late_within_their_expiry_then_dropped(
    aredis: Any,
) -> None:
    """A block's slot not taken at its time is still good a little later (callers busy with
    their calls); one not taken within a quarter second of its time leaves its time empty:
    the next permit is a slot of now."""
    clock = Clock()
    limiter = limiter_on(aredis, clock, start_rate_per_s=400)
    first = await limiter.acquire(400)
    clock.advance(0.2)
    assert (await limiter.acquire(400)).slot_ms == pytest.approx(first.slot_ms + 2.5)
    clock.advance(0.3)
    assert (await limiter.acquire(400)).slot_ms == pytest.approx(first.slot_ms + 500)
