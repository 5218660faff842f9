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
from worker.errors import AuthError
from worker.jobs import Api, Job, JobState, MalformedChunk, RowResult
from worker.lease import ChunkLease, LeaseLost
from worker.model import ImageBatch, RowStatus
from worker.outcomes import Outcome, OutcomeKind
from worker.ratelimit import SharedRateLimiter, bucket_key
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
    # (job, identity key) pairs whose credentials a call has proven, in this process.
    verified: set[tuple[str, str]] = field(default_factory=set)


# error_code given to rows when IAM refuses to issue a token (wrong user, password or scope).
IAM_REFUSED = "IAM.TOKEN_REFUSED"
PROBE_TTL_MS = 30_000
# How stale a worker's view of "cancelled/aborted" may be: at 1,000 calls/s, 100 calls.
STATE_READ_S = 0.1


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
        self._rate_shown = 0.0
        self._rate_shown_at = 0.0

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
        """Whether the job was cancelled or aborted (read from Redis at most every 0.1 s)."""
        if not self._state.finished and self.ctx.clock() - self._state_read_at > STATE_READ_S:
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
        identity = bucket_key(endpoint, client.identity)
        started, attempt = self.ctx.clock(), 0
        while True:
            attempt += 1
            self.lease.check()
            probe = await self.gate(identity)
            rate = await limiter.acquire(options.rate_per_s) if probe is not None else 0.0
            if probe is None or await self.stopped():
                await self.record(batch, RowResult(RowStatus.CANCELLED, attempts=attempt - 1))
                return
            self.lease.check()
            outcome = await self.call(client, batch)
            if probe:
                await self.settle(identity, outcome)
            if outcome.kind is OutcomeKind.THROTTLED:
                rate, cut = await limiter.throttled()
                if cut:
                    log.info("ratelimit.adjusted", rate=round(rate, 2), cause="429")
            elif outcome.http_status is not None:
                limiter.accepted()
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

    async def gate(self, identity: str) -> bool | None:
        """Hold calls back until one call has proven the job's credentials for an identity.

        Five bad signatures in a row lock an AK for five minutes, and a job opens with many
        calls in flight on many workers: so the first call goes alone (the "probe", claimed in
        Redis), and the rest wait for its answer. Returns True for the probe, False once the
        credentials are known good, None if the job stopped while waiting.
        """
        job_id = self.job.job_id
        if (job_id, identity) in self.ctx.verified:
            return False
        while True:
            if await self.ctx.store.identity_verified(job_id, identity):
                self.ctx.verified.add((job_id, identity))
                return False
            if await self.ctx.store.claim_probe(job_id, identity, PROBE_TTL_MS):
                return True
            if await self.stopped():
                return None
            await asyncio.sleep(0.05)

    async def settle(self, identity: str, outcome: Outcome) -> None:
        """Record what the probe learnt. After a signature failure or a refused token the
        probe is kept (the job is about to abort): nobody else may try those credentials."""
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED or outcome.error_code == IAM_REFUSED:
            return
        refused = outcome.kind in (OutcomeKind.UNAUTHORIZED, OutcomeKind.TOKEN_EXPIRED)
        accepted = not refused and not outcome.kind.retryable
        await self.ctx.store.settle_probe(self.job.job_id, identity, accepted=accepted)
        if accepted:
            self.ctx.verified.add((self.job.job_id, identity))

    def retry_allowed(self, outcome: Outcome, attempt: int, started: float) -> bool:
        options = self.job.options
        return (
            outcome.kind.retryable
            and attempt < options.max_attempts
            and self.ctx.clock() - started < options.row_deadline_s
        )

    async def call(self, client: ImsClient, batch: ImageBatch) -> Outcome:
        tags = [tag.tag for tag in batch.tags]
        try:
            if self.job.options.api is Api.V2:
                return await client.tags_action(
                    batch.project_id, batch.image_id, tags, action="delete"
                )
            return await client.batch_delete_tags(batch.project_id, batch.image_id, tags)
        except AuthError as exc:
            return Outcome(OutcomeKind.UNAUTHORIZED, exc.http_status, IAM_REFUSED, str(exc))

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
        await self.show_rate(rate)

    async def show_rate(self, rate: float) -> None:
        """Publish the effective rate when it moved (1% of the ceiling) or every 2 s."""
        ceiling = self.job.options.rate_per_s
        now = self.ctx.clock()
        if abs(rate - self._rate_shown) < 0.01 * ceiling and now - self._rate_shown_at < 2.0:
            return
        if self._rate_shown < ceiling <= rate:
            log.info("ratelimit.adjusted", rate=round(rate, 2), cause="recovered")
        self._rate_shown, self._rate_shown_at = rate, now
        await self.ctx.store.publish_rate(self.job.job_id, rate)

    async def check_breakers(self, outcome: Outcome, recorded: Recorded) -> None:
        """Abort the job on a signature failure, or on too large a share of failed requests."""
        options = self.job.options
        reason = None
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED:
            reason = f"AK/SK signature refused ({outcome.error_code}: {outcome.error_message})"
        elif outcome.error_code == IAM_REFUSED:
            reason = f"no token: {outcome.error_message}"
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
