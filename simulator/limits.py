"""Per-identity throttling and the call statistics the simulator reports."""

from __future__ import annotations

import re
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


_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?)?\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RateLimit:
    """COUNT calls per WINDOW per identity, as ``--rate-limit COUNT[/WINDOW]`` gives it."""

    count: float
    window_s: float = 1.0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``40`` (per second), ``600/30s``, ``200/5min``; ValueError says what is wrong."""
        count_text, slash, window_text = text.partition("/")
        try:
            count = float(count_text)
        except ValueError:
            raise ValueError(f"{text!r}: COUNT must be a number") from None
        match = _WINDOW.match(window_text if slash else "1s")
        if match is None:
            raise ValueError(f"{text!r}: WINDOW must be like 1s, 30s, 1min or 5min")
        window_s = float(match[1]) * _UNIT_S[(match[2] or "s")[0]]
        if count <= 0 or window_s <= 0:
            raise ValueError(f"{text!r}: COUNT and WINDOW must be above 0")
        return cls(count, window_s)

    @property
    def policy_text(self) -> str:
        """How the real gateway names the limit: ``limit:200,time:5 minute``."""
        if self.window_s >= 60 and self.window_s % 60 == 0:
            time_text = f"{self.window_s / 60:g} minute"
        else:
            time_text = f"{self.window_s:g} second"
        return f"limit:{self.count:g},time:{time_text}"


@dataclass
class Throttle:
    """Per identity, a one-second token bucket (the default window) or a fixed window of
    COUNT calls; ``None`` means no limit. Counts accepted and refused calls per window.

    Fixed windows start at multiples of the window on the clock, so a job starts at some
    unknown point of one, as it would against the real gateway (whose alignment is not
    published).
    """

    limit: RateLimit | None
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    # Identity -> (window number, calls accepted in it), for windows longer than a second.
    used: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Window number -> [calls accepted, calls refused (429)], all identities together.
    per_window: dict[int, list[int]] = field(default_factory=dict)

    def allow(self, identity: str) -> bool:
        if self.limit is None:
            return True
        now = self.clock()
        window = int(now // self.limit.window_s)
        if self.limit.window_s <= 1.0:
            allowed = self._bucket(identity, now).take(now)
        else:
            number, calls = self.used.get(identity, (window, 0))
            calls = calls if number == window else 0
            allowed = calls < self.limit.count
            self.used[identity] = (window, calls + allowed)
        self.per_window.setdefault(window, [0, 0])[0 if allowed else 1] += 1
        return allowed

    def _bucket(self, identity: str, now: float) -> TokenBucket:
        assert self.limit is not None
        rate = self.limit.count / self.limit.window_s
        capacity = max(1.0, rate)
        return self.buckets.setdefault(identity, TokenBucket(rate, capacity, capacity, now))

    def windows_json(self) -> dict[str, object]:
        """Accepted and refused calls per window, keyed by the window's start in seconds
        after the first window that saw a call."""
        if self.limit is None or not self.per_window:
            return {"window_s": None, "counts": {}}
        first = min(self.per_window)
        return {
            "window_s": self.limit.window_s,
            "counts": {
                f"{(n - first) * self.limit.window_s:g}": list(c)
                for n, c in sorted(self.per_window.items())
            },
        }


@dataclass
class CallStats:
    """Calls per HTTP status and the busiest second seen, for ``GET /_sim/stats``."""

    clock: Callable[[], float] = time.monotonic
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    by_api: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    _second: int = -1
    _in_second: int = 0
    _accepted_in_second: int = 0
    peak_per_s: int = 0
    peak_accepted_per_s: int = 0
    first_call_s: float | None = None
    last_call_s: float | None = None
    # Whole wall-clock second -> [calls, throttled calls], for rate-over-time plots.
    timeline: dict[int, list[int]] = field(default_factory=dict)
    wall: Callable[[], float] = time.time

    def record(
        self,
        status: int | None,
        operation: str,
        *,
        api: str = "ims",
        throttled: bool | None = None,
    ) -> None:
        """Count one call; ``None`` is a dropped connection. ``throttled`` defaults to
        ``status == 429`` (TMS throttles with a 403 too)."""
        throttled = status == 429 if throttled is None else throttled
        now = self.wall()
        if self.first_call_s is None:
            self.first_call_s = now
        self.last_call_s = now
        self.by_api[api] += 1
        slot = self.timeline.setdefault(int(now), [0, 0])
        slot[0] += 1
        slot[1] += throttled
        second = int(self.clock())
        if second != self._second:
            self._second, self._in_second, self._accepted_in_second = second, 0, 0
        self._in_second += 1
        if status is None:
            self.dropped += 1
        else:
            self.by_status[status] += 1
            if not throttled:
                self._accepted_in_second += 1
        self.by_operation[operation] += 1
        self.peak_per_s = max(self.peak_per_s, self._in_second)
        self.peak_accepted_per_s = max(self.peak_accepted_per_s, self._accepted_in_second)
