"""Working one chunk: lease, skip what is final, call IMS per image under the shared rate,
retry what is worth retrying, record every row, stop on cancel or abort.

Nothing here knows Celery: a task calls ``run_chunk`` and so can a test.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import structlog

from worker.backoff import compute_backoff
from worker.client import ImsClient, ims_endpoint
from worker.jobs import Api, Job, JobState, MalformedChunk, RowResult
from worker.lease import ChunkLease, LeaseLost
from worker.model import ImageBatch, RowStatus
from worker.outcomes import Outcome, OutcomeKind
from worker.ratelimit import SharedRateLimiter
from worker.store import Recorded, ResultStore

log = structlog.get_logger("tagsweep.worker")

ClientFor = Callable[[str], ImsClient]
LimiterFor = Callable[[str, str], SharedRateLimiter]


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


async def run_chunk(ctx: EngineContext, job_id: str, number: int) -> str:
    """Work chunk ``number`` of ``job_id``; return what happened (for logs and tests)."""
    bound = structlog.contextvars.bound_contextvars(job_id=job_id, chunk=number)
    with bound:
        lease = ChunkLease(ctx.store, job_id, number, lease_s=ctx.lease_s, clock=ctx.clock)
        answer = await lease.acquire()
        if answer != "ok":
            log.info("chunk.skipped", reason=answer)
            return answer
        async with lease:
            job = await ctx.store.load_job(job_id)
            try:
                batches = await ctx.store.load_chunk(job_id, number)
            except MalformedChunk as exc:
                log.error("chunk.malformed", error=str(exc))
                return "malformed"
            if job is None or batches is None:
                log.error("chunk.missing", job_found=job is not None)
                return "missing"
            lost = False
            try:
                await ChunkRun(ctx, job, lease).work(batches)
            except* LeaseLost:
                lost = True
            if lost:
                log.warning("chunk.lease_lost")
                return "lease_lost"
            lease.complete = True
        return "worked"


class ChunkRun:
    """The state of one chunk being worked: the job, its lease, and the stop check."""

    def __init__(self, ctx: EngineContext, job: Job, lease: ChunkLease) -> None:
        self.ctx = ctx
        self.job = job
        self.lease = lease
        self.final: set[int] = set()
        self._state = job.state
        self._state_read_at = ctx.clock()

    async def work(self, batches: list[ImageBatch]) -> None:
        refs = [ref for batch in batches for tag in batch.tags for ref in tag.refs]
        self.final = await self.ctx.store.final_refs(self.job.job_id, refs)
        if not self.job.state.finished:
            self._state = await self.ctx.store.mark_running(self.job.job_id)
        slots = asyncio.Semaphore(self.ctx.concurrency)

        async def one(batch: ImageBatch) -> None:
            async with slots:
                await self.work_batch(batch)

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(one(batch))

    async def stopped(self) -> bool:
        """Whether the job was cancelled or aborted (read from Redis at most every 0.5 s)."""
        if not self._state.finished and self.ctx.clock() - self._state_read_at > 0.5:
            self._state = await self.ctx.store.job_state(self.job.job_id) or self._state
            self._state_read_at = self.ctx.clock()
        return self._state in (JobState.CANCELLED, JobState.ABORTED)

    async def work_batch(self, batch: ImageBatch) -> None:
        tags = tuple(t for t in batch.tags if not all(ref in self.final for ref in t.refs))
        if not tags:
            return
        batch = replace(batch, tags=tags)
        if await self.stopped():
            await self.record(batch, RowResult(RowStatus.CANCELLED), request=False)
            return
        options = self.job.options
        endpoint = ims_endpoint(batch.region, options.endpoint)
        client = self.ctx.client_for(endpoint)
        limiter = self.ctx.limiter_for(endpoint, client.identity)
        started, attempt = self.ctx.clock(), 0
        while True:
            attempt += 1
            self.lease.check()
            rate = await limiter.acquire(options.rate_per_s)
            if await self.stopped():
                await self.record(batch, RowResult(RowStatus.CANCELLED, attempts=attempt - 1))
                return
            self.lease.check()
            outcome = await self.call(client, batch)
            if outcome.kind is OutcomeKind.THROTTLED:
                rate, cut = await limiter.throttled()
                if cut:
                    log.info("ratelimit.adjusted", rate=round(rate, 2), cause="429")
            if not self.retry_allowed(outcome, attempt, started):
                break
            delay_s = compute_backoff(
                attempt,
                base_s=options.backoff_base_s,
                cap_s=options.backoff_cap_s,
                rng=self.ctx.rng,
                retry_after_s=outcome.retry_after_s,
            )
            log.info("batch.retry", **_fields(batch, outcome, attempt), delay_s=round(delay_s, 3))
            await self.ctx.sleep(delay_s)
        await self.finish_batch(batch, outcome, attempt, rate)

    def retry_allowed(self, outcome: Outcome, attempt: int, started: float) -> bool:
        options = self.job.options
        return (
            outcome.kind.retryable
            and attempt < options.max_attempts
            and self.ctx.clock() - started < options.row_deadline_s
        )

    async def call(self, client: ImsClient, batch: ImageBatch) -> Outcome:
        tags = [tag.tag for tag in batch.tags]
        if self.job.options.api is Api.V2:
            return await client.tags_action(batch.project_id, batch.image_id, tags, action="delete")
        return await client.batch_delete_tags(batch.project_id, batch.image_id, tags)

    async def finish_batch(
        self, batch: ImageBatch, outcome: Outcome, attempt: int, rate: float
    ) -> None:
        result = RowResult(
            status=outcome.row_status,
            http_status=outcome.http_status,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
            attempts=attempt,
            request_id=outcome.request_id,
            finished_at_ms=int(time.time() * 1000),
        )
        failed = outcome.row_status not in (RowStatus.DELETED, RowStatus.NOT_FOUND)
        recorded = await self.record(batch, result, request=True, failed=failed)
        log.info(
            "batch.done",
            **_fields(batch, outcome, attempt),
            latency_ms=round(outcome.latency_ms, 1),
            rate=round(rate, 2),
        )
        await self.check_breakers(outcome, recorded)

    async def check_breakers(self, outcome: Outcome, recorded: Recorded) -> None:
        """Abort the job on a signature failure, or on too large a share of failed requests."""
        options = self.job.options
        reason = None
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED:
            reason = f"AK/SK signature refused ({outcome.error_code}: {outcome.error_message})"
        elif (
            recorded.requests >= options.breaker_min
            and recorded.failed_requests > options.breaker_ratio * recorded.requests
        ):
            reason = (
                f"{recorded.failed_requests} of {recorded.requests} requests failed "
                f"(more than {options.breaker_ratio:.0%})"
            )
        if reason and await self.ctx.store.stop_job(self.job.job_id, JobState.ABORTED, reason):
            self._state = JobState.ABORTED
            log.error("job.aborted", reason=reason)

    async def record(
        self, batch: ImageBatch, result: RowResult, *, request: bool = False, failed: bool = False
    ) -> Recorded:
        rows = [(ref, result) for tag in batch.tags for ref in tag.refs]
        # Shielded: a cancelled coroutine must still record what it learnt (STYLE: errors).
        recorded = await asyncio.shield(
            self.ctx.store.record(self.job.job_id, rows, request=request, failed=failed)
        )
        self.final.update(ref for ref, _ in rows)
        if recorded.finished is not None:
            log.info("job.finished", state=recorded.finished.value, total=self.job.total)
        return recorded


def _fields(batch: ImageBatch, outcome: Outcome, attempt: int) -> dict[str, object]:
    return {
        "image_id": batch.image_id,
        "project_id": batch.project_id,
        "tags": len(batch.tags),
        "status": outcome.row_status.value,
        "outcome": outcome.kind.value,
        "http_status": outcome.http_status,
        "error_code": outcome.error_code,
        "attempt": attempt,
        "request_id": outcome.request_id,
    }
