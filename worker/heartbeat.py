"""Worker heartbeats: each Celery main process says every few seconds that it is alive, so
that the exporter can count live workers on every host (Celery's own heartbeats travel as
events, which the Redis broker does not keep)."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any, ClassVar

import redis
import structlog
from celery import bootsteps

from worker import keys
from worker.store.sync import SyncStore

log = structlog.get_logger("tagsweep.heartbeat")

BEAT_INTERVAL_S = 5.0
# A worker silent for this long is not counted live; entries silent for an hour are dropped.
LIVE_S = keys.WORKER_LIVE_S


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def live_workers(client: redis.Redis, now_ms: int) -> int:
    """How many workers beat within ``LIVE_S`` of ``now_ms`` (Redis time)."""
    return SyncStore(client).live_workers(now_ms - LIVE_S * 1000)


class HeartbeatStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: beat every few seconds; leave the set on a clean stop."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer_ref: Any = None
        self._store: SyncStore | None = None
        self._name = worker_name()

    def start(self, parent: Any) -> None:
        self._store = SyncStore(
            redis.Redis.from_url(parent.app.conf.broker_url, decode_responses=True)
        )
        self._beat()
        self._timer_ref = parent.timer.call_repeatedly(BEAT_INTERVAL_S, self._beat, priority=10)

    def stop(self, parent: Any) -> None:
        if self._timer_ref is not None:
            self._timer_ref.cancel()
        if self._store is not None:
            # On failure it drops out of the count after LIVE_S anyway.
            with contextlib.suppress(redis.RedisError):
                self._store.leave(self._name)

    def _beat(self) -> None:
        assert self._store is not None
        try:
            self._store.beat(self._name)
        except redis.RedisError as exc:
            log.warning("heartbeat.failed", error=str(exc))
