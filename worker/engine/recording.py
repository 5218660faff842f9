"""Recording one chunk's rows: each row given its result (held by the ``Recorder``, flushed in
one script call), the ``batch.done`` line of each request or decision, the process's progress
counts, and the calls made since the last flush."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import structlog

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.calls import Action
from worker.engine.context import EngineContext
from worker.engine.recorder import Recorder
from worker.jobs import Job, RowResult
from worker.limits.retrying import Sent
from worker.model import ImageBatch, RowStatus
from worker.store import CallTally, Recorded

log = structlog.get_logger("tagsweep.worker")


class ChunkRecording:
    """The rows one chunk recorded, and what the last flush returned."""

    def __init__(self, ctx: EngineContext, job: Job, number: int) -> None:
        self.ctx = ctx
        self.job = job
        self.number = number
        self.recorder = Recorder(ctx.store, job, clock=ctx.clock)
        self.tally = CallTally()
        # Rows with a result (already final when the chunk started, or recorded by it).
        self.final: set[int] = set()
        # What the last flush returned (the job's counts, all workers together).
        self.recorded: Recorded | None = None
        # This chunk recorded the job's last row (then its keys get their retention TTL).
        self.all_final = False
        self.cancelled_rows = 0

    def chunk_of(self, batch: ImageBatch) -> int:
        """The chunk whose results and observations hold the batch's rows."""
        return self.number if batch.origin is None else batch.origin

    def answered(
        self,
        batch: ImageBatch,
        sent: Sent,
        action: Action,
        statuses: Sequence[RowStatus],
        *,
        request: bool = True,
    ) -> None:
        """Hold the rows a call decided (``statuses``: one per tag of the batch), counting
        the request unless told not to, and log it."""
        outcome = sent.outcome
        base = result_of(sent, outcome.row_status)
        results = {status: replace(base, status=status) for status in set(statuses)}
        rows = [
            (ref, results[status])
            for tag, status in zip(batch.tags, statuses, strict=True)
            for ref in tag.refs
        ]
        failed = outcome.kind not in (OutcomeKind.OK, OutcomeKind.NOT_FOUND)
        self._hold(batch, rows, request=request, failed=failed and request)
        counts = Counter(result.status.value for _, result in rows)
        log.log(
            self.level_for(counts),
            "batch.done",
            **fields(batch, outcome, sent.attempts, action),
            status=statuses[0].value if len(results) == 1 else "mixed",
            latency_ms=round(outcome.latency_ms, 1),
            rate=round(sent.rate, 2),
        )
        if request:  # a TMS call's other images add no request of their own
            self.ctx.progress.latency(self.job.job_id, outcome.latency_ms)

    def settled(self, batch: ImageBatch, result: RowResult) -> None:
        """Hold one result for every row of the batch (no request counted), and log it."""
        self._hold(batch, [(ref, result) for tag in batch.tags for ref in tag.refs])
        if result.status is RowStatus.CANCELLED:
            self.cancelled_rows += batch.rows
        else:  # decided by the read before (value_differs, restored, kept_newer)
            log.log(
                self.level_for(Counter({result.status.value: 1})),
                "batch.done",
                image_id=batch.image_id,
                project_id=batch.project_id,
                action="list",
                tags=len(batch.tags),
                keys=[tag.key for tag in batch.tags],
                status=result.status.value,
                http_status=result.http_status,
                attempt=result.attempts,
                request_id=result.request_id,
            )

    def level_for(self, statuses: Counter[str]) -> int:
        """A request's log level (DESIGN: Logs): rows that all ended as the job wished are
        ``debug``; not_found (done, but worth a look) ``info``; any other row ``warning``, so
        that a filter on warning lists every row that did not end well."""
        goals = self.job.options.goals
        if all(status in goals and status != RowStatus.NOT_FOUND for status in statuses):
            return logging.DEBUG
        if all(status in goals for status in statuses):
            return logging.INFO
        return logging.WARNING

    def _hold(
        self,
        batch: ImageBatch,
        rows: list[tuple[int, RowResult]],
        *,
        request: bool = False,
        failed: bool = False,
    ) -> None:
        """Give rows their results, written with the next flush into the results of the
        chunk the rows came from (a retry chunk's batches name theirs)."""
        self.recorder.add(self.chunk_of(batch), rows, request=request, failed=failed)
        self.final.update(ref for ref, _ in rows)

    def breaker_held(self) -> tuple[int, int]:
        """Requests held, not counted in Redis yet: (all, failed)."""
        return self.recorder.requests

    async def flush(self, *, worked_ms: int = 0) -> Recorded | None:
        """Write the held results, the calls made since the last flush and the ms worked
        (``Recorder.flush``); None if there was nothing to write."""
        requests, _ = self.recorder.requests
        calls = self.tally.take()
        recorded = await self.recorder.flush(calls=calls, worked_ms=worked_ms)
        if recorded is not None:
            self.recorded = recorded
            # Counted from what the write took: the job.progress lines sum to the job's counts.
            self.ctx.progress.recorded(
                self.job.job_id, recorded, total=self.job.total, requests=requests, calls=calls
            )
            if recorded.added and recorded.done >= self.job.total:
                self.all_final = True
        return recorded


def result_of(sent: Sent, status: RowStatus) -> RowResult:
    """A row's result as the call ``sent`` decided it; rows decided by a read alone
    (value_differs, kept_newer) are recorded with the read's answer."""
    outcome = sent.outcome
    return RowResult(
        status=status,
        http_status=outcome.http_status,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        attempts=sent.attempts,
        request_id=outcome.request_id,
        finished_at_ms=int(time.time() * 1000),
    )


def fields(batch: ImageBatch, outcome: Outcome, attempt: int, action: Action) -> dict[str, object]:
    """The fields of a call's log lines (``batch.done``, ``batch.retry``); a call that failed
    names its keys and the cloud's error message too (a count of tags says too little)."""
    failed = {}
    if outcome.kind is not OutcomeKind.OK:
        failed = {
            "keys": [tag.key for tag in batch.tags],
            "error_message": outcome.error_message,
        }
    return {
        "image_id": batch.image_id,
        "project_id": batch.project_id,
        "action": action,
        "tags": len(batch.tags),
        "outcome": outcome.kind.value,
        "http_status": outcome.http_status,
        "error_code": outcome.error_code,
        "attempt": attempt,
        "request_id": outcome.request_id,
        **failed,
    }
