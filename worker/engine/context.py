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
from worker.cloud.tms import TmsClient
from worker.engine.progress import ProgressLog
from worker.limits.limiter import SharedRateLimiter
from worker.store import ResultStore

ClientFor = Callable[[str], ImsClient]
# (TMS endpoint, the job's domain id or None for the worker's own) -> a client for it; raises
# ``CredentialsError`` when these credentials cannot call TMS.
TmsClientFor = Callable[[str, str | None], TmsClient]


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
    # Jobs whose rate this process saw cut by a 429: only their return to the ceiling is a
    # ``recovered`` line (the gentle start's ramp is not).
    rates_cut: set[str] = field(default_factory=set)
    # Jobs this process logged ``job.cancelled`` for: one line per job and process.
    stops_logged: set[str] = field(default_factory=set)
    progress: ProgressLog = field(init=False)
    tms_client_for: TmsClientFor | None = None
    # What TMS named as IMS images' type, per domain (this process's copy of the store's).
    tms_types: dict[str, str] = field(default_factory=dict)
    tms_asking: asyncio.Lock = field(default_factory=asyncio.Lock)
    # (job, reason) pairs already logged: TMS unusable, IMS used instead.
    tms_refusals: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.progress = ProgressLog(self.clock)
