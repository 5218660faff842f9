"""A chunk lease held while the chunk is worked on, renewed by a heartbeat.

Why a lease: with the Redis broker, Celery re-delivers a message held by a dead worker only
after the visibility timeout; tagsweep instead lets the lease expire (``lease_s``, 30 s by
default) and the reaper re-dispatches the chunk. The lease also keeps a chunk from being worked
by two workers at once: a second delivery finds it ``busy`` and is dropped, since the holder or
the reaper will see it through.

A holder that was paused past its lease (a stopped process, a partition) must not go on
sending: ``valid()`` compares a local deadline, pushed forward by each successful renewal, so
that a paused holder stops before its next call even before it learns the lease is gone.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType

import structlog

from worker.engine.background import finish_anyway, redis_lost
from worker.errors import LeaseLost
from worker.store import ResultStore

log = structlog.get_logger("tagsweep.lease")


class LeaseAnswer(StrEnum):
    """What asking for a chunk's lease gave (the ACQUIRE_LEASE script's answer)."""

    OK = "ok"  # the lease is ours
    BUSY = "busy"  # held by a live worker
    DONE = "done"  # nothing left to do in the chunk


class ChunkLease:
    """Holds one chunk's lease; use as ``async with`` after ``acquire()`` answered ``OK``."""

    def __init__(
        self,
        store: ResultStore,
        job_id: str,
        number: int,
        *,
        lease_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.number = number
        self.owner = uuid.uuid4().hex
        self.lease_s = lease_s
        self._clock = clock
        self._deadline = 0.0
        self._said_at = 0.0  # when the time held was last counted in the job's active time
        self._heartbeat: asyncio.Task[None] | None = None
        self._complete = False

    @property
    def _ttl_ms(self) -> int:
        return int(self.lease_s * 1000)

    async def acquire(self) -> LeaseAnswer:
        """Take the lease, unless a live worker holds it or the chunk is done."""
        started = self._clock()
        answer = LeaseAnswer(
            await self.store.acquire_lease(self.job_id, self.number, self.owner, self._ttl_ms)
        )
        if answer is LeaseAnswer.OK:
            # Measured from before the call: the lease may have started any time after it.
            self._deadline = started + self.lease_s * 0.9
            self._said_at = self._clock()
        return answer

    def take_held_ms(self) -> int:
        """Milliseconds held since the time held was last counted in the job's active time
        (a flush, a renewal, the release), which it now is."""
        now = self._clock()
        held, self._said_at = now - self._said_at, now
        return max(0, round(held * 1000))

    def mark_complete(self) -> None:
        """Every row of the chunk was worked: the release marks the chunk done."""
        self._complete = True

    def valid(self) -> bool:
        return self._clock() < self._deadline

    def check(self) -> None:
        if not self.valid():
            raise LeaseLost(f"lease of chunk {self.number} of job {self.job_id} ran out")

    async def __aenter__(self) -> ChunkLease:
        self._heartbeat = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if exc is not None and not self._complete and not isinstance(exc, asyncio.CancelledError):
            # Something broke (Redis gone, a bug): keep the lease so that it expires and the
            # reaper queues the chunk again; releasing it would leave nobody to do so. Redis
            # gone is said once, by ``run_chunk``. A chunk cancelled (``run``'s lane on
            # Ctrl-C) is handed back at once: the run that resumes it queues it again.
            if not redis_lost(exc):
                log.error("chunk.crashed", job_id=self.job_id, chunk=self.number, error=repr(exc))
            return
        # Shielded: a cancelled task must still hand its chunk on (STYLE: protect final writes).
        await finish_anyway(
            self.store.release_lease(
                self.job_id,
                self.number,
                self.owner,
                complete=self._complete,
                worked_ms=self.take_held_ms(),
            ),
            what="lease release",
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            started = self._clock()
            try:
                held_ms = self.take_held_ms()
                renewed = await self.store.renew_lease(
                    self.job_id, self.number, self.owner, self._ttl_ms, worked_ms=held_ms
                )
            except Exception as exc:  # a failed beat is retried; the local deadline guards
                log.warning(
                    "lease.renew_failed", job_id=self.job_id, chunk=self.number, error=str(exc)
                )
                continue
            if not renewed:
                self._deadline = 0.0
                log.warning("lease.lost", job_id=self.job_id, chunk=self.number)
                return
            self._deadline = started + self.lease_s * 0.9
