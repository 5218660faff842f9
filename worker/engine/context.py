"""What one worker process brings to every chunk: the store, the IMS clients and limiters,
and the clock, sleep and randomness (injected, so that tests run without real waiting)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from worker.cloud.client import ImsClient
from worker.engine.progress import ProgressLog
from worker.limits.limiter import SharedRateLimiter
from worker.store import ResultStore

ClientFor = Callable[[str], ImsClient]


class LimiterFor(Protocol):
    """The process's shared limiter of an (endpoint, identity) of an API ("ims", "tms")."""

    def __call__(self, endpoint: str, identity: str, api: str = ...) -> SharedRateLimiter: ...


@dataclass
class EngineContext:
    """What one worker process brings to every chunk."""

    store: ResultStore
    client_for: ClientFor
    limiter_for: LimiterFor
    concurrency: int = 16
    lease_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    # (job, bucket key) pairs whose credentials a call has proven, in this process.
    verified: set[tuple[str, str]] = field(default_factory=set)
    # The shared rate last published per job by this process: a change is logged, not a chunk.
    rates_shown: dict[str, float] = field(default_factory=dict)
    # Jobs this process logged ``job.cancelled`` for: one line per job and process.
    stops_logged: set[str] = field(default_factory=set)
    progress: ProgressLog = field(init=False)

    def __post_init__(self) -> None:
        self.progress = ProgressLog(self.clock)
