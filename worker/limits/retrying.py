"""One call under the shared rate, with retries: the loop that both the engine (a batch's
call) and the producer's listing (a query page) run.

Each attempt waits for a permit of the shared limiter, makes the call, and tells the limiter
what came back (a 429, or an answer it accepted). A 429 at a limit the gateway named, or while
a window's quota is spent, says nothing about the call and uses up no attempt ("free"): all
callers hold back together. What is retryable is retried with ``compute_backoff`` until the
attempt cap (less the free ones) or the deadline. What else a caller does around each step
(a lease check, the credential probe, logs and counters) it says through a ``CallWatch``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.jobs import JobOptions
from worker.limits.backoff import compute_backoff
from worker.limits.limiter import SharedRateLimiter, Throttling
from worker.model import CloudLimit

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Sent:
    """The last answer to a call made with retries, after how many attempts, at what rate."""

    outcome: Outcome
    attempts: int
    rate: float
    limit: CloudLimit | None = None


@dataclass(frozen=True)
class Stopped:
    """The job stopped before the call was answered; ``attempts``: calls made before."""

    attempts: int


class CallWatch(Protocol):
    """What a caller does around the steps of ``call_under_rate``."""

    async def ready(self) -> bool:
        """Before an attempt asks for its permit: False when the job stopped."""

    async def stopped(self) -> bool:
        """Whether the job stopped (asked while the limiter holds, and after a permit)."""

    async def call(self) -> Outcome:
        """Make the call once."""

    async def throttled(self, throttling: Throttling) -> None:
        """A 429 was reported to the limiter; ``throttling``: what it did."""

    def retrying(self, outcome: Outcome, attempt: int, delay_s: float) -> None:
        """The call is made again after ``delay_s``."""


async def call_under_rate(
    limiter: SharedRateLimiter,
    watch: CallWatch,
    *,
    policy: JobOptions,
    clock: Callable[[], float],
    sleep: Sleep,
    rng: random.Random,
) -> Sent | Stopped:
    """Make ``watch``'s call under ``limiter``, retrying as ``policy`` allows."""
    started, attempt, free = clock(), 0, 0
    while True:
        attempt += 1
        if not await watch.ready():
            return Stopped(attempt - 1)
        permit = await limiter.acquire(policy.rate_per_s, stop=watch.stopped)
        if permit is None or await watch.stopped():
            return Stopped(attempt - 1)
        outcome = await watch.call()
        rate = permit.rate_per_s
        if outcome.kind is OutcomeKind.THROTTLED:
            throttling = await limiter.throttled(permit, outcome.limit, outcome.scope)
            rate = throttling.rate_per_s
            free += throttling.free
            await watch.throttled(throttling)
        elif outcome.http_status is not None:
            limiter.accepted()
        counted = attempt - free
        if not _retry_allowed(outcome, counted, clock() - started, policy):
            return Sent(outcome, attempt, rate, limiter.limit)
        delay_s = compute_backoff(
            counted,
            base_s=policy.backoff_base_s,
            cap_s=policy.backoff_cap_s,
            rng=rng,
            retry_after_s=outcome.retry_after_s,
        )
        watch.retrying(outcome, attempt, delay_s)
        await sleep(delay_s)


def _retry_allowed(outcome: Outcome, attempt: int, elapsed_s: float, policy: JobOptions) -> bool:
    return (
        outcome.kind.retryable
        and attempt < policy.max_attempts
        and elapsed_s < policy.row_deadline_s
    )
