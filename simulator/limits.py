"""Per-identity throttling and the call statistics the simulator reports."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Allows ``rate_per_s`` calls a second on average, bursts up to ``capacity``.

    A bucket holding one second's worth is how API gateways commonly absorb the jitter of a
    client that sends at exactly the limit; the real gateway does not publish its algorithm.
    """

    rate_per_s: float
    capacity: float
    tokens: float
    updated_s: float

    def take(self, now_s: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class Throttle:
    """One bucket per identity; ``None`` as the rate means no limit."""

    rate_per_s: float | None
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, identity: str) -> bool:
        if self.rate_per_s is None:
            return True
        now = self.clock()
        capacity = max(1.0, self.rate_per_s)
        bucket = self.buckets.setdefault(
            identity, TokenBucket(self.rate_per_s, capacity, capacity, now)
        )
        return bucket.take(now)


@dataclass
class CallStats:
    """Calls per HTTP status and the busiest second seen, for ``GET /_sim/stats``."""

    clock: Callable[[], float] = time.monotonic
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    _second: int = -1
    _in_second: int = 0
    _accepted_in_second: int = 0
    peak_per_s: int = 0
    peak_accepted_per_s: int = 0
    first_call_s: float | None = None
    last_call_s: float | None = None
    # Whole wall-clock second -> [calls, 429s], for rate-over-time plots.
    timeline: dict[int, list[int]] = field(default_factory=dict)
    wall: Callable[[], float] = time.time

    def record(self, status: int | None, operation: str) -> None:
        """Count one call; ``None`` is a dropped connection."""
        now = self.wall()
        if self.first_call_s is None:
            self.first_call_s = now
        self.last_call_s = now
        slot = self.timeline.setdefault(int(now), [0, 0])
        slot[0] += 1
        slot[1] += status == 429
        second = int(self.clock())
        if second != self._second:
            self._second, self._in_second, self._accepted_in_second = second, 0, 0
        self._in_second += 1
        if status is None:
            self.dropped += 1
        else:
            self.by_status[status] += 1
            if status != 429:
                self._accepted_in_second += 1
        self.by_operation[operation] += 1
        self.peak_per_s = max(self.peak_per_s, self._in_second)
        self.peak_accepted_per_s = max(self.peak_accepted_per_s, self._accepted_in_second)
