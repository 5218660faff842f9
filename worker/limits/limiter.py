"""One rate limit per (endpoint, identity), shared by every worker through Redis.

Whose allowance it is, the gateway says in its 429 (``policy user|ip|api``): a limiter given
its ``Schedules`` moves its calls to the schedule of the scope a 429 names
(worker/limits/scopes.py); each schedule keeps what it learnt.

The limiter hands out send times rather than yes/no answers: one script call reserves the next
free slot on a schedule kept in Redis (a GCRA "theoretical arrival time" on Redis time), and
the caller sleeps until its slot. N workers together therefore never exceed the rate, and nobody
spins on refusals. In-process limiters (aiolimiter, Celery's ``rate_limit``) cannot hold across
hosts, which is why this one is hand-written. The scripts are in worker/limits/reserve.py and
throttle.py.

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
a named limit, else the accepted rate measured); with nothing learnt, at the best rate it ran
at without a 429 (``keys.rate_best``, worker/limits/placement.py), or else at
``start_rate_per_s``, growing by a factor of ``ramp_per_s`` a second (doubling every fifth of
a second) until the first 429: a job at ten times the limit must not open with a second of
429s.

No slot is booked more than ``horizon_s`` ahead: a caller asking past it is told when to ask
again (and its process remembers, so its other callers do not ask meanwhile). Slots booked by
every waiting caller at once would keep the rate of that moment however it changed after, and
stalled the ramp and every recovery behind them (docs/decisions.md, Limits).

Permits come in blocks when the rate is high: one reservation takes as many consecutive slots
(each still 1/rate after the one before, on the shared schedule) as fall due within
``block_span_s`` at the current rate, at least one and at most ``max_block``; so below
2/``block_span_s`` (80/s by default: the default ``--rate`` of 50 included) it is one slot a
call, as before, and at 640/s and more one script call serves 16 sends. The block is kept in
this process and handed out slot by slot to the callers of ``acquire``, each sleeping until its
own slot. A slot taken but not used only leaves its time empty: the schedule never sends
faster for it. Slots are dropped unused when the process ends, when a 429 in this process
changes the schedule (a cut, a limit, a hold: see ``_epoch``), and when nobody took them within
``slot_expiry_s`` of their time. So beside the slots its callers already sleep on, a process
holds at most one block (``rate * block_span_s`` calls, at most ``max_block``) that can go out
after the schedule changed elsewhere or bunched up after a stall: the same order as the callers
that were already waiting, and far inside the one second's burst a gateway's token bucket
absorbs. While holding, the script hands out one probe slot at a time, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog

from worker import keys
from worker.limits.placement import Placement
from worker.limits.reserve import RESERVE, Reservation
from worker.limits.scopes import Schedules
from worker.limits.slots import HeldSlots, Permit, Slot, block
from worker.limits.throttle import THROTTLED, Throttled, Throttling
from worker.limits.tuning import RateTuning
from worker.model import CloudLimit, Scope
from worker.store.rates import RateMemory

__all__ = ["Permit", "SharedRateLimiter", "Throttling", "bucket_key"]
log = structlog.get_logger("tagsweep.worker")
Sleep = Callable[[float], Awaitable[None]]
# The key of one (endpoint, identity) schedule (kept under this name for its callers).
bucket_key = keys.rate_bucket
# While holding, a waiting caller asks again at least this often (a probe may end the hold
# sooner than the next probe time).
POLL_S = 0.25


@dataclass
class SharedRateLimiter:
    """Waits for a send slot on the shared schedule of one (endpoint, identity)."""

    redis: aioredis.Redis
    # The user schedule: the one calls start on, and the key of the identity's credential probe.
    key: str
    tuning: RateTuning = field(default_factory=RateTuning)
    sleep: Sleep = asyncio.sleep
    # Time in ms for the scripts instead of Redis time (and this process's): tests only.
    clock_ms: Callable[[], float] | None = None
    # The schedule of each scope a 429 may name; None: ``key``'s alone, whatever a 429 says.
    schedules: Schedules | None = None

    def __post_init__(self) -> None:
        self._reserve = self.redis.register_script(RESERVE)
        self._throttled = self.redis.register_script(THROTTLED)
        self._placement = Placement(self.key, self.schedules, RateMemory(self.redis))
        self.effective_rate_per_s = 0.0
        self.limit: CloudLimit | None = None
        self.holding = False
        self._accepted = 0
        # Bumped when this process learns that the schedule changed (a cut, a limit, a hold):
        # a permit reserved before then is asked for again, and the slots held are dropped.
        self._epoch = 0
        self._held = HeldSlots(
            self._local_ms, self.tuning.slot_expiry_s * 1000, self.tuning.horizon_s * 1000
        )
        # One reservation at a time: callers arriving meanwhile take from its block.
        self._reserving = asyncio.Lock()

    def _now(self) -> str:
        return "" if self.clock_ms is None else repr(self.clock_ms())

    def _local_ms(self) -> float:
        return time.monotonic() * 1000 if self.clock_ms is None else self.clock_ms()

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
            epoch = self._epoch
            slot = self._held.take(ceiling_per_s)
            if slot is None:
                slot, wait_ms = await self._reserve_block(ceiling_per_s)
                if slot is None:
                    if stop is not None and await stop():
                        return None
                    await self.sleep(min(wait_ms / 1000, POLL_S))
                    continue
            wait_ms = slot.due_ms - self._local_ms()
            if wait_ms > 0:
                await self.sleep(wait_ms / 1000)
            if self._epoch == epoch:
                return slot.permit

    async def _reserve_block(self, ceiling_per_s: float) -> tuple[Slot | None, float]:
        """Reserve a block of slots; keep all but the first. (None, ms to wait) if none."""
        async with self._reserving:
            slot = self._held.take(ceiling_per_s)  # reserved by another caller meanwhile
            if slot is not None:
                return slot, 0.0
            booked_ms = self._held.ask_in_ms()
            if booked_ms > 0:
                return None, booked_ms
            epoch = self._epoch
            accepted, self._accepted = self._accepted, 0
            answer = await self._ask(ceiling_per_s, accepted)
            received_ms = self._local_ms()
            self.effective_rate_per_s = answer.rate_per_s
            count, window_s = answer.limit_count, answer.window_ms / 1000
            self.limit = CloudLimit(count, window_s) if count else None
            if self.holding != answer.holding:  # another process started or ended a hold
                self._held.clear()
            self.holding = answer.holding
            if answer.resumed:
                log.info("ratelimit.resumed", rate=round(self.effective_rate_per_s, 2))
            if not answer.granted:
                if self.holding:  # a probe slot later (the hold may end sooner: ask again)
                    return None, answer.wait_ms
                return None, self._held.booked(answer.wait_ms)
            slots = block(
                answer.rate_per_s, answer.granted, answer.first_ms, received_ms + answer.wait_ms
            )
            if self._epoch == epoch:  # else a 429 came meanwhile: the caller asks again
                # A probe slot's successor is set by the probe spacing (or an accepted probe),
                # not by the rate: asking again is never put off while holding.
                self._held.keep(ceiling_per_s, slots, booked=not self.holding)
            return slots[0], 0.0

    async def _ask(self, ceiling_per_s: float, accepted: int) -> Reservation:
        """One RESERVE on the schedule of now; a 429-free second it measured is remembered."""
        placement = self._placement
        bucket, remembered = placement.bucket, await placement.start_at()
        args = self.tuning.reserve_args(
            self._now(), ceiling_per_s, accepted, remembered_per_s=remembered
        )
        answer = Reservation.from_reply(await self._reserve(keys=placement.keys, args=args))
        await placement.measured(bucket, answer.clean_per_s)
        return answer

    @property
    def scope(self) -> Scope:
        return self._placement.scope

    @property
    def schedule_key(self) -> str:
        """The schedule calls are counted on now (``key``'s, or another scope's)."""
        return self._placement.bucket

    @property
    def _keys(self) -> list[str]:
        return self._placement.keys

    async def throttled(
        self,
        permit: Permit | None = None,
        limit: CloudLimit | None = None,
        scope: Scope | None = None,
    ) -> Throttling:
        """Report a 429 to a call sent on ``permit``; ``limit`` and ``scope``: what its message
        named (a scope other than the schedule's moves the calls to that scope's)."""
        if self._placement.move(scope):  # a permit or slot of the old schedule is not used
            self._epoch += 1
            self._held.clear()
            self.holding, self.limit = False, None
        args = self.tuning.throttled_args(self._now(), permit, limit)
        reply = Throttled.from_reply(await self._throttled(keys=self._keys, args=args))
        answer = reply.throttling(limit)
        if answer.cut or answer.learned or (answer.holding and not self.holding):
            self._epoch += 1
            self._held.clear()
        self.effective_rate_per_s = answer.rate_per_s
        self.holding = answer.holding
        self.limit = answer.learned or self.limit
        return answer
