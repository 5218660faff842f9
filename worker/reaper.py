"""Taking back the chunks of lost workers: expired leases are re-dispatched.

Runs in every worker's main process on Celery's timer (a worker bootstep), so idle workers
take up the work of dead ones; the script hands each expired lease to one reaper only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import redis
import structlog
from celery import bootsteps

from worker.broker import dispatch_chunk, settings
from worker.jobs import JobState
from worker.store.sync import SyncStore

log = structlog.get_logger("tagsweep.reaper")

REAP_INTERVAL_S = 5.0
# A re-dispatched chunk's lease entry waits this long for a worker before it is reaped again.
REDISPATCH_GRACE_MS = 60_000
# Re-dispatched chunks jump the queue (kombu's Redis priority emulation; 0 is served first).
REDISPATCH_PRIORITY = 0


def reap_once(
    client: redis.Redis, send: Any, *, limit: int = 100, only_job: str | None = None
) -> list[str]:
    """Re-dispatch every chunk whose lease expired; return their lease members. ``only_job``
    (a ``run``'s workers on its private Redis): another job's lease is freed instead, for its
    own run to queue the chunk again when it is resumed."""
    store = SyncStore(client)
    members = store.reap_expired(REDISPATCH_GRACE_MS, limit)
    for member in members:
        job_id, _, number = member.rpartition(":")
        state = store.job_state(job_id)
        other = only_job is not None and job_id != only_job
        if other or state is None or (state.finished and not _stopped(state)):
            store.free_lease(job_id, int(number))
            continue
        send(job_id, int(number))
        log.warning("chunk.redispatched", job_id=job_id, chunk=int(number))
    return members


def _stopped(state: JobState) -> bool:
    # Chunks of a cancelled or aborted job still run, quickly, to record their rows as cancelled.
    return state in (JobState.CANCELLED, JobState.ABORTED)


class ReaperStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep: reap expired leases every few seconds."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer_ref: Any = None
        self._client: redis.Redis | None = None

    def start(self, parent: Any) -> None:
        self._client = redis.Redis.from_url(parent.app.conf.broker_url, decode_responses=True)
        self._timer_ref = parent.timer.call_repeatedly(
            REAP_INTERVAL_S, self._reap, (parent,), priority=10
        )

    def stop(self, parent: Any) -> None:
        if self._timer_ref is not None:
            self._timer_ref.cancel()

    def _reap(self, parent: Any) -> None:
        assert self._client is not None
        try:
            reap_once(
                self._client,
                lambda job, n: dispatch_chunk(job, n, priority=REDISPATCH_PRIORITY),
                only_job=settings.run_job,
            )
        except redis.RedisError as exc:
            log.warning("reaper.failed", error=str(exc))
