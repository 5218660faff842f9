"""The rate's log lines (``worker.engine.rates``): a return to the ceiling is ``recovered`` only
after a 429 cut the rate in this process, not at the end of the gentle start's ramp."""

from __future__ import annotations

from typing import Any, cast

import structlog

from worker.engine.context import EngineContext
from worker.engine.rates import RatePublisher
from worker.jobs import Job, JobOptions, JobState
from worker.limits.limiter import Throttling
from worker.model import CloudLimit


class Store:
    """The one store call the publisher makes."""

    def __init__(self) -> None:
        self.published: list[float] = []

    async def publish_rate(
        self, job_id: str, rate: float, limit: CloudLimit | None = None, *, scope: str | None = None
    ) -> None:
        self.published.append(rate)


def publisher() -> tuple[RatePublisher, Store]:
    store = Store()
    none = cast(Any, None)
    ctx = EngineContext(store=cast(Any, store), client_for=none, limiter_for=none)
    job = Job("job", JobState.RUNNING, 10, 1, JobOptions(rate_per_s=1000.0))
    return RatePublisher(ctx, job), store


def cut(rate: float) -> Throttling:
    return Throttling(rate, cut=True, learned=None, holding=False, held=False, free=False)


async def test_the_ramp_of_a_gentle_start_reaching_the_ceiling_is_no_recovered_line() -> None:
    rates, store = publisher()
    with structlog.testing.capture_logs() as captured:
        for rate in (80.0, 500.0, 1000.0):
            await rates.show(rate)
    assert store.published == [80.0, 500.0, 1000.0]
    assert [e["event"] for e in captured] == []


async def test_the_ceiling_reached_again_after_a_429_is_one_recovered_line() -> None:
    rates, _ = publisher()
    with structlog.testing.capture_logs() as captured:
        await rates.show(1000.0)
        await rates.throttled(cut(400.0))
        for rate in (400.0, 1000.0, 400.0, 1000.0):
            await rates.show(rate)
    assert [(e["event"], e.get("cause")) for e in captured] == [
        ("ratelimit.adjusted", "429"),
        ("ratelimit.adjusted", "recovered"),
    ]
