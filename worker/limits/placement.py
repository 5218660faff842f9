"""Which shared schedule a limiter's calls are counted on, and what is remembered of it.

A limiter starts on its user schedule and moves to the schedule of the scope a 429 names
(worker/limits/scopes.py). Of each schedule it uses, it asks the store once for the best
429-free rate remembered (a new schedule with nothing learnt starts there, not at 20/s), and
tells the store each higher rate its reservations measure (RESERVE's ``clean_per_s``: calls
accepted in a whole second with no 429 in it or the next), so a process writes a handful of
times a job, not once a reservation.
"""

from __future__ import annotations

import structlog

from worker import keys
from worker.limits.scopes import Schedules
from worker.model import Scope
from worker.store.rates import RateMemory

log = structlog.get_logger("tagsweep.worker")


def script_keys(bucket: str) -> list[str]:
    """KEYS of both scripts (worker/limits/reserve.py) for one schedule."""
    named = (keys.rate_memory, keys.rate_accepted, keys.rate_throttled)
    return [bucket, *(name(bucket) for name in named)]


class Placement:
    """The schedule a limiter's calls go on now, its scripts' KEYS and its best rate."""

    def __init__(self, key: str, schedules: Schedules | None, memory: RateMemory) -> None:
        self.scope = Scope.USER
        self.keys = script_keys(key)
        self._schedules = schedules
        self._memory = memory
        self._start_at: dict[str, float] = {}  # per schedule: the best rate read at first use
        self._told: dict[str, float] = {}  # ... and the highest this process told the store

    @property
    def bucket(self) -> str:
        return self.keys[0]

    def move(self, scope: Scope | None) -> bool:
        """Go to ``scope``'s schedule if a 429 named another than this one (and the limiter
        knows the schedules of scopes): True if the calls moved."""
        if scope is None or scope is self.scope or self._schedules is None:
            return False
        log.info("ratelimit.scope", scope=scope.value, was=self.scope.value)
        self.scope = scope
        self.keys = script_keys(self._schedules.key(scope))
        return True

    async def start_at(self) -> float:
        """The best 429-free rate remembered for the schedule (0: none), read once."""
        bucket = self.bucket
        if bucket not in self._start_at:
            self._start_at[bucket] = await self._memory.best_rate(bucket)
        return self._start_at[bucket]

    async def measured(self, bucket: str, clean_per_s: float) -> None:
        """A reservation on ``bucket`` measured a 429-free second of ``clean_per_s`` calls."""
        if clean_per_s > self._told.get(bucket, 0.0):
            self._told[bucket] = await self._memory.remember_rate(bucket, clean_per_s)
