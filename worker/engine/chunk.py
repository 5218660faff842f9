"""The chunk loop: every batch of a leased chunk worked, ``concurrency`` at a time, its rows
recorded and flushed while the batches go, and the job's breakers checked on what each
request and each flush says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from redis.exceptions import RedisError

from worker.engine.batch import work_batch
from worker.engine.breakers import Breakers
from worker.engine.calls import Action
from worker.engine.context import EngineContext
from worker.engine.groups import work_group
from worker.engine.lease import ChunkLease
from worker.engine.probe import CredentialProbe
from worker.engine.rates import RatePublisher
from worker.engine.recorder import FLUSH_AGE_S
from worker.engine.recording import ChunkRecording
from worker.engine.stopping import StopCheck
from worker.jobs import Job, RowResult
from worker.limits.retrying import Sent
from worker.model import Batch, ImageBatch, ResourceBatch, RowStatus, image_batches
from worker.store import Recorded

log = structlog.get_logger("tagsweep.worker")


class ChunkRun:
    """One chunk being worked: its job and lease, and the parts that work it."""

    def __init__(self, ctx: EngineContext, job: Job, lease: ChunkLease) -> None:
        self.ctx = ctx
        self.job = job
        self.lease = lease
        self.stop = StopCheck(ctx.store, job, ctx.clock)
        self.rows = ChunkRecording(ctx, job, lease.number)
        self.breakers = Breakers(job.options, self.stop)
        self.rates = RatePublisher(ctx, job)
        self.probe = CredentialProbe(ctx, job.job_id, self.stop)
        # Row ref -> the value the command line's paged read found (``producer.pagedread``).
        self.listed: dict[int, str | None] = {}

    @property
    def all_final(self) -> bool:
        """This chunk recorded the job's last row (then its keys get their retention TTL)."""
        return self.rows.all_final

    async def work(self, batches: list[Batch]) -> None:
        """Work every batch; what was recorded is flushed before the lease is released, also
        when the chunk stops early (lease lost, cancelled, out of memory), and the process's
        last interval for the job logged: it lets go of the job until its next chunk."""
        try:
            try:
                await self._work_all(batches)
            finally:
                await self.flush()
        finally:
            self.ctx.progress.let_go(self.job.job_id)
        if self.rows.cancelled_rows and self.job.job_id not in self.ctx.stops_logged:
            # Once per job and process, not per chunk: job.progress counts the rows.
            self.ctx.stops_logged.add(self.job.job_id)
            log.warning("job.cancelled", state=self.stop.state.value, reason=self.stop.reason)
        if self.rows.all_final:
            # Here, once every batch of the chunk has logged: a batch whose record went before
            # the last one's may log after it, and job.finished is a job's last line.
            await self._log_finished()

    async def _log_finished(self) -> None:
        """The job's last line, with its totals as Redis holds them (all workers together)."""
        try:
            totals = await self.ctx.store.totals(self.job.job_id)
        except RedisError as exc:  # the rows are recorded; only the line's totals are lost
            log.info("job.finished", total=self.job.total, error=str(exc))
            return
        if totals is not None:
            log.info("job.finished", total=self.job.total, **totals.as_fields())

    async def _work_all(self, batches: list[Batch]) -> None:
        refs = [ref for batch in image_batches(batches) for tag in batch.tags for ref in tag.refs]
        self.rows.final = await self.ctx.store.final_refs(self.job.job_id, refs)
        if self.job.options.reads_in_pages:
            self.listed = await self.ctx.store.chunk_observed(self.job.job_id, self.lease.number)
        await self.stop.mark_running()
        slots = asyncio.Semaphore(self.ctx.concurrency)
        left = len(batches)
        all_done = asyncio.Event()

        async def one(batch: Batch) -> None:
            nonlocal left
            try:
                async with slots:
                    if isinstance(batch, ResourceBatch):
                        await work_group(self, batch)
                    else:
                        await work_batch(self, batch)
            finally:
                left -= 1
                if not left:
                    all_done.set()

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(one(batch))
            if batches:
                # In the group: a flush that fails stops the chunk like any other error.
                group.create_task(self._flush_while(all_done))

    async def _flush_while(self, all_done: asyncio.Event) -> None:
        """Flush what is held every ``FLUSH_AGE_S`` while batches are going, so that results
        reach Redis within tens of milliseconds even when no new one comes to trigger it."""
        while not all_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done.wait(), FLUSH_AGE_S)
            if self.rows.recorder.due():
                await self.flush()

    async def record(self, batch: ImageBatch, result: RowResult) -> None:
        """Record one result for every row of the batch (no request counted)."""
        self.rows.settled(batch, result)
        if self.rows.recorder.due():
            await self.flush()

    async def finish(
        self,
        batch: ImageBatch,
        sent: Sent,
        action: Action,
        statuses: Sequence[RowStatus],
        *,
        request: bool = True,
    ) -> None:
        """Record the rows a call decided (one status per tag), log it, and check the
        breakers. ``request``: count the call (a TMS call answers for several images: it is
        counted with the first)."""
        self.rows.answered(batch, sent, action, statuses, request=request)
        await self.breakers.check_outcome(sent.outcome)
        near = self.breakers.near(self.rows.recorded, self.rows.breaker_held())
        if self.rows.recorder.due() or near:
            await self.flush(sent.rate)
        await self.rates.show(sent.rate, sent.limit)

    async def flush(self, rate: float | None = None) -> None:
        """Write the held results (and the calls made since the last flush); then the job's
        last line or its progress, and the failure-ratio breaker, on what the write returned."""
        # The time held goes with results (a pool process killed at Ctrl-C loses only what
        # came after its last flush); with nothing to write it waits for the next one.
        worked_ms = self.lease.take_held_ms() if self.rows.recorder.pending else 0
        recorded = await self.rows.flush(worked_ms=worked_ms)
        if recorded is None:
            return
        self._after_record(recorded, self.rates.last() if rate is None else rate)
        await self.breakers.check_ratio(recorded)

    def _after_record(self, recorded: Recorded, rate: float) -> None:
        """The job's periodic progress line; the rate is shown no more once the job finished."""
        self.ctx.progress.maybe_log(self.job.job_id, rate=rate)
        if recorded.finished is not None:
            self.rates.forget()
