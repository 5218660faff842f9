"""One rate limit per (endpoint, identity), shared by every worker through Redis.

The limiter hands out send times rather than yes/no answers: one script call reserves the next
free slot on a schedule kept in Redis (a GCRA "theoretical arrival time" on Redis time), and
the caller sleeps until its slot. N workers together therefore never exceed the rate, and nobody
spins on refusals. In-process limiters (aiolimiter, Celery's ``rate_limit``) cannot hold across
hosts, which is why this one is hand-written. The scripts are in worker/scripts.py.

What the cloud says comes first. A 429 whose gateway message names the limit
(``limit:200,time:5 minute``) sets the ceiling of the schedule, for all workers at once, to
``learnt_share`` of COUNT/WINDOW; a 429 at that rate then means the window's quota is spent, so
the schedule holds: one probe call at a time, spaced by a thirtieth of the window, until one is
accepted. A probe is cheap, and finding the window's end by waiting on a guessed phase would
not be (the gateway does not say when its window started).

Without a message the rate adapts. The calls the cloud accepted in a whole second that also
saw 429s, while calls came at least at half the rate, are its real rate: the shared rate is set
to ``settle_share`` of the latest such count of the last two seconds, cutting by at most
``deep_cut_factor`` at once; without such a second it is halved, at most once per
``cut_cooldown_s`` (a count taken while workers sat idle comes in low and once collapsed the
rate to a quarter of the limit in CI). It grows back by ``fast_recovery_per_s`` of itself each
second while below 90% of the accepted rate last measured, then by ``recovery_per_s``, up to
``--rate``. (Measurements: docs/decisions.md, Limits; bench/ratelimit.py.) When no call has
been accepted for ``spent_after_s`` while 429s came, a window's quota is spent there too, and
the schedule holds as above, probing every ``probe_unknown_s``.

A new schedule starts from what was learnt for its endpoint and identity (``keys.rate_memory``:
a named limit, else the accepted rate measured), or else at ``start_rate_per_s``, growing by
``ramp_per_s`` a second until the first 429: a job at ten times the limit must not open with a
second of 429s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from worker import keys
from worker.model import CloudLimit
from worker.scripts import RESERVE, THROTTLED

log = structlog.get_logger("tagsweep.worker")
Sleep = Callable[[float], Awaitable[None]]
# The key of one (endpoint, identity) schedule (kept under this name for its callers).
bucket_key = keys.rate_bucket
MEMORY_TTL_S = 30 * 24 * 3600
# While holding, a waiting caller asks again at least this often (a probe may end the hold
# sooner than the next probe time).
POLL_S = 0.25


@dataclass(frozen=True)
class Permit:
    """A send slot: the effective rate it was granted at and its time (Redis ms)."""

    rate_per_s: float
    slot_ms: float


@dataclass(frozen=True)
class Throttling:
    """What reporting a 429 did to the shared schedule."""

    rate_per_s: float
    cut: bool  # this report changed the rate
    learned: CloudLimit | None  # the limit this report taught (new to the schedule)
    holding: bool  # the window's quota is spent: all workers hold back
    held: bool  # this report started the hold
    free: bool  # no fault of the row (a known limit, a spent window, or news from before)


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
    learnt_share: float = 0.95
    min_rate_per_s: float = 0.2
    start_rate_per_s: float = 20.0
    ramp_per_s: float = 4.0
    spent_after_s: float = 1.0
    probe_unknown_s: float = 1.0
    sleep: Sleep = asyncio.sleep
    # Time in ms for the scripts instead of Redis time: tests only.
    clock_ms: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        self._reserve = self.redis.register_script(RESERVE)
        self._throttled = self.redis.register_script(THROTTLED)
        self._keys = [self.key, keys.rate_memory(self.key)]
        self.effective_rate_per_s = 0.0
        self.limit: CloudLimit | None = None
        self.holding = False
        self._accepted = 0
        # Bumped when this process learns that the schedule changed (a cut, a limit, a
        # hold): a permit reserved before then is given back and asked for again.
        self._epoch = 0

    def _now(self) -> str:
        return "" if self.clock_ms is None else repr(self.clock_ms())

    def accepted(self) -> None:
        """Note a call the cloud accepted (any answer but 429); reported with the next permit."""
        self._accepted += 1

    async def acquire(
        self, ceiling_per_s: float, *, stop: Callable[[], Awaitable[bool]] | None = None
    ) -> Permit | None:
        """Wait for one permit (while the schedule holds, until a probe slot is free).

        ``stop`` is asked between polls while holding (a hold may last minutes): None when it
        says the caller should stop waiting (the job was cancelled or aborted).
        """
        while True:
            accepted, self._accepted = self._accepted, 0
            epoch = self._epoch
            wait_ms, rate, granted, slot, count, window_ms, holding, resumed = await self._reserve(
                keys=self._keys,
                args=[
                    self._now(),
                    ceiling_per_s,
                    self.recovery_per_s,
                    self.min_rate_per_s,
                    accepted,
                    self.fast_recovery_per_s,
                    self.start_rate_per_s,
                    self.ramp_per_s,
                    self.learnt_share,
                    int(self.probe_unknown_s * 1000),
                ],
            )
            self.effective_rate_per_s = float(rate)
            self.limit = CloudLimit(int(count), float(window_ms) / 1000) if int(count) else None
            self.holding = bool(holding)
            if resumed:
                log.info("ratelimit.resumed", rate=round(self.effective_rate_per_s, 2))
            if not granted:
                if stop is not None and await stop():
                    return None
                await self.sleep(min(float(wait_ms) / 1000, POLL_S))
                continue
            if float(wait_ms) > 0:
                await self.sleep(float(wait_ms) / 1000)
            if self._epoch == epoch:
                return Permit(self.effective_rate_per_s, float(slot))

    async def throttled(
        self, permit: Permit | None = None, limit: CloudLimit | None = None
    ) -> Throttling:
        """Report a 429 to a call sent on ``permit``; ``limit``: what its message named."""
        rate, cut, learned, holding, held, free = await self._throttled(
            keys=self._keys,
            args=[
                self._now(),
                self.cut_factor,
                self.min_rate_per_s,
                int(self.cut_cooldown_s * 1000),
                self.settle_share,
                self.deep_cut_factor,
                permit.slot_ms if permit else 0,
                limit.count if limit else 0,
                round(limit.window_s * 1000) if limit else 0,
                self.learnt_share,
                int(self.spent_after_s * 1000),
                int(self.probe_unknown_s * 1000),
                MEMORY_TTL_S,
            ],
        )
        answer = Throttling(
            float(rate),
            bool(cut),
            limit if learned else None,
            bool(holding),
            bool(held),
            bool(free),
        )
        if answer.cut or answer.learned or (answer.holding and not self.holding):
            self._epoch += 1
        self.effective_rate_per_s = answer.rate_per_s
        self.holding = answer.holding
        self.limit = limit if learned else self.limit
        return answer
