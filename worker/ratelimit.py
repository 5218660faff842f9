"""One rate limit per (endpoint, identity), shared by every worker through Redis.

The limiter hands out send times rather than yes/no answers: one script call reserves the next
free slot on a schedule kept in Redis (a GCRA "theoretical arrival time" on Redis time), and
the caller sleeps until its slot. N workers together therefore never exceed the rate, and nobody
spins on refusals. In-process limiters (aiolimiter, Celery's ``rate_limit``) cannot hold across
hosts, which is why this one is hand-written. The scripts are in worker/ratescripts.py.

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
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from worker import keys
from worker.model import CloudLimit
from worker.ratescripts import RESERVE, THROTTLED

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


@dataclass(frozen=True)
class _Slot:
    """A reserved slot held in this process: its permit and when it falls due here (ms of
    this process's clock)."""

    permit: Permit
    due_ms: float


class _HeldSlots:
    """The slots of this process's blocks not yet handed out, per ceiling asked for (jobs of
    different ``--rate`` in one process each take their own). A slot more than ``expiry_ms``
    past its time is dropped, not sent."""

    def __init__(self, clock_ms: Callable[[], float], expiry_ms: float) -> None:
        self._clock_ms = clock_ms
        self._expiry_ms = expiry_ms
        self._held: dict[float, deque[_Slot]] = {}

    def take(self, ceiling_per_s: float) -> _Slot | None:
        held = self._held.get(ceiling_per_s)
        oldest_ms = self._clock_ms() - self._expiry_ms
        while held:
            slot = held.popleft()
            if slot.due_ms >= oldest_ms:
                return slot
        return None

    def keep(self, ceiling_per_s: float, slots: list[_Slot]) -> None:
        self._held[ceiling_per_s] = deque(slots)

    def clear(self) -> None:
        self._held.clear()


def _block(rate_per_s: float, count: int, first_ms: float, due_ms: float) -> list[_Slot]:
    """``count`` slots 1/rate apart from ``first_ms`` (Redis), due from ``due_ms`` (here)."""
    interval_ms = 1000 / rate_per_s
    return [
        _Slot(Permit(rate_per_s, first_ms + i * interval_ms), due_ms + i * interval_ms)
        for i in range(count)
    ]


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
    block_span_s: float = 0.025
    max_block: int = 16
    # A caller's turn took 40-165 ms at unlimited rate: at 25 ms most of a block expired
    # unused (5.6 sends a reservation, against 13 at 0.25 s; docs/decisions.md).
    slot_expiry_s: float = 0.25
    sleep: Sleep = asyncio.sleep
    # Time in ms for the scripts instead of Redis time (and this process's): tests only.
    clock_ms: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        self._reserve = self.redis.register_script(RESERVE)
        self._throttled = self.redis.register_script(THROTTLED)
        # KEYS of both scripts (worker/ratescripts.py).
        named = (keys.rate_memory, keys.rate_accepted, keys.rate_throttled)
        self._keys = [self.key, *(name(self.key) for name in named)]
        self.effective_rate_per_s = 0.0
        self.limit: CloudLimit | None = None
        self.holding = False
        self._accepted = 0
        # Bumped when this process learns that the schedule changed (a cut, a limit, a hold):
        # a permit reserved before then is asked for again, and the slots held are dropped.
        self._epoch = 0
        self._held = _HeldSlots(self._local_ms, self.slot_expiry_s * 1000)
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

    async def _reserve_block(self, ceiling_per_s: float) -> tuple[_Slot | None, float]:
        """Reserve a block of slots; keep all but the first. (None, ms to wait) if none."""
        async with self._reserving:
            slot = self._held.take(ceiling_per_s)  # reserved by another caller meanwhile
            if slot is not None:
                return slot, 0.0
            epoch = self._epoch
            accepted, self._accepted = self._accepted, 0
            wait_ms, rate, granted, first, count, window_ms, holding, resumed = await self._reserve(
                keys=self._keys, args=self._reserve_args(ceiling_per_s, accepted)
            )
            received_ms = self._local_ms()
            self.effective_rate_per_s = float(rate)
            self.limit = CloudLimit(int(count), float(window_ms) / 1000) if int(count) else None
            self.holding = bool(holding)
            if resumed:
                log.info("ratelimit.resumed", rate=round(self.effective_rate_per_s, 2))
            if not int(granted):
                return None, float(wait_ms)
            slots = _block(
                self.effective_rate_per_s, int(granted), float(first), received_ms + float(wait_ms)
            )
            if self._epoch == epoch:  # else a 429 came meanwhile: the caller asks again
                self._held.keep(ceiling_per_s, slots[1:])
            return slots[0], 0.0

    def _reserve_args(self, ceiling_per_s: float, accepted: int) -> list[str | float | int]:
        return [
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
            self.block_span_s * 1000,
            self.max_block,
        ]

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
        taught = limit if learned else None
        answer = Throttling(float(rate), bool(cut), taught, bool(holding), bool(held), bool(free))
        if answer.cut or answer.learned or (answer.holding and not self.holding):
            self._epoch += 1
            self._held.clear()
        self.effective_rate_per_s = answer.rate_per_s
        self.holding = answer.holding
        self.limit = taught or self.limit
        return answer
