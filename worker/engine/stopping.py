"""Whether a job is still to be worked: a chunk's view of "cancelled or aborted", read from
Redis at most every ``STATE_READ_S``, and the one way a worker aborts a job."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from worker.jobs import Job, JobState, RowResult
from worker.model import RowStatus
from worker.store import ResultStore

log = structlog.get_logger("tagsweep.worker")

# How stale a worker's view of "cancelled/aborted" may be: at 1,000 calls/s, 100 calls.
STATE_READ_S = 0.1


class StopCheck:
    """One chunk's view of its job's state."""

    def __init__(self, store: ResultStore, job: Job, clock: Callable[[], float]) -> None:
        self.store = store
        self.job_id = job.job_id
        self.state = job.state
        self._clock = clock
        self._read_at = clock()
        self._reason: str | None = None

    async def mark_running(self) -> None:
        """The chunk starts: a queued job becomes running."""
        if not self.state.finished:
            self.state = await self.store.mark_running(self.job_id)

    async def stopped(self) -> bool:
        """Whether the job was cancelled or aborted (read from Redis at most every 0.1 s)."""
        if not self.state.finished and self._clock() - self._read_at > STATE_READ_S:
            # Stamped before the read: the batches that ask while it is on its way keep the
            # state they have (0.1 s stale at most) instead of each reading Redis too.
            self._read_at = self._clock()
            self.state = await self.store.job_state(self.job_id) or self.state
        return self.state in (JobState.CANCELLED, JobState.ABORTED)

    @property
    def reason(self) -> str:
        """Why the job stopped, as read for its cancelled rows ("" before)."""
        return self._reason or ""

    async def cancelled(self, *, attempts: int) -> RowResult:
        """The result of a row the job stopped before sending: why it stopped, as the job says
        (read once per chunk)."""
        if self._reason is None:
            self._reason = await self.store.stop_reason(self.job_id)
        return RowResult(RowStatus.CANCELLED, error_message=self._reason, attempts=attempts)

    async def abort(self, reason: str, *, resend: RowStatus | None = None) -> None:
        """Abort the job (unless it is over already) and say why; ``resend``: the status the
        cause gave rows, which a resume sends again (``JobField.RESEND``)."""
        if await self.store.stop_job(self.job_id, JobState.ABORTED, reason, resend=resend):
            self.state = JobState.ABORTED
            log.error("job.aborted", reason=reason)
