"""The shared retry loop (``worker.limits.retrying``): attempts, free 429s, stops, backoff."""

from __future__ import annotations

import random
from typing import Any

from tests.helpers import Clock
from worker import keys
from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.jobs import JobOptions
from worker.limits.limiter import SharedRateLimiter, Throttling
from worker.limits.retrying import Sent, Stopped, call_under_rate
from worker.model import CloudLimit


class Script:
    """A call that answers the outcomes given, in order, and notes what it was told."""

    def __init__(self, *outcomes: Outcome, ready: bool = True) -> None:
        self.outcomes = list(outcomes)
        self.is_ready = ready
        self.calls = 0
        self.throttlings: list[Throttling] = []
        self.retries: list[tuple[int, float]] = []

    async def ready(self) -> bool:
        return self.is_ready

    async def stopped(self) -> bool:
        return False

    async def call(self) -> Outcome:
        self.calls += 1
        return self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]

    async def throttled(self, throttling: Throttling) -> None:
        self.throttlings.append(throttling)

    def retrying(self, outcome: Outcome, attempt: int, delay_s: float) -> None:
        self.retries.append((attempt, delay_s))


async def run(aredis: Any, script: Script, **options: Any) -> Sent | Stopped:
    clock = Clock()  # the limiter's time, moved by its waits
    key = keys.rate_bucket("https://ims", "ak")
    limiter = SharedRateLimiter(aredis, key, sleep=clock.sleep, clock_ms=clock)
    options.setdefault("rate_per_s", 1000.0)
    slept: list[float] = []

    async def sleep(delay_s: float) -> None:
        slept.append(delay_s)

    answer = await call_under_rate(
        limiter,
        script,
        policy=JobOptions(**options),
        clock=lambda: 0.0,
        sleep=sleep,
        rng=random.Random(1),
    )
    assert [delay for _, delay in script.retries] == slept  # each backoff is slept once
    return answer


async def test_a_retryable_answer_is_retried_up_to_the_attempt_cap(aredis: Any) -> None:
    script = Script(Outcome(OutcomeKind.SERVER_ERROR, 500))
    answer = await run(aredis, script, max_attempts=3)
    assert isinstance(answer, Sent)
    assert (answer.outcome.kind, answer.attempts, script.calls) == (OutcomeKind.SERVER_ERROR, 3, 3)
    assert [attempt for attempt, _ in script.retries] == [1, 2]


async def test_an_answer_not_worth_retrying_is_returned_at_once(aredis: Any) -> None:
    script = Script(Outcome(OutcomeKind.SERVER_ERROR, 500), Outcome(OutcomeKind.OK, 204))
    answer = await run(aredis, script)
    assert isinstance(answer, Sent)
    assert (answer.outcome.kind, answer.attempts) == (OutcomeKind.OK, 2)
    assert answer.rate > 0


async def test_a_429_at_a_named_limit_uses_up_no_attempt(aredis: Any) -> None:
    """The first 429 naming the limit holds every caller back: it is no fault of the call."""
    throttled = Outcome(OutcomeKind.THROTTLED, 429, limit=CloudLimit(1000, 1.0))
    script = Script(throttled, Outcome(OutcomeKind.OK, 204))
    answer = await run(aredis, script, max_attempts=1)
    assert isinstance(answer, Sent)
    assert (answer.outcome.kind, answer.attempts) == (OutcomeKind.OK, 2)
    assert script.throttlings[0].free


async def test_a_call_not_ready_is_stopped_before_any_attempt(aredis: Any) -> None:
    script = Script(Outcome(OutcomeKind.OK, 204), ready=False)
    assert await run(aredis, script) == Stopped(0)
    assert script.calls == 0
