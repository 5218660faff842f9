"""Working one chunk: lease, skip what is final, call IMS per image under the shared rate,
retry what is worth retrying, record every row, stop on cancel or abort.

Nothing here knows Celery: a task calls ``run_chunk`` and so can a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal, cast

import structlog
from redis.exceptions import OutOfMemoryError, RedisError

from worker.backoff import compute_backoff
from worker.client import ImsClient, ims_endpoint
from worker.errors import AuthError
from worker.formats import MalformedChunk
from worker.jobs import Api, Job, JobState, Mode, RowResult
from worker.lease import ChunkLease, LeaseLost
from worker.model import CloudLimit, ImageBatch, RowStatus, TagRows
from worker.outcomes import Outcome, OutcomeKind
from worker.progress import ProgressLog
from worker.ratelimit import SharedRateLimiter, Throttling, bucket_key
from worker.recorder import FLUSH_AGE_S, Recorder
from worker.store import CallTally, Recorded, ResultStore

log = structlog.get_logger("tagsweep.worker")

ClientFor = Callable[[str], ImsClient]
# The calls a batch can make: read its image's tags, delete them, or re-create them (undo).
Action = Literal["list", "delete", "create"]
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
    # The shared rate last published per job by this process: a change is logged, not a chunk.
    rates_shown: dict[str, float] = field(default_factory=dict)
    progress: ProgressLog = field(init=False)

    def __post_init__(self) -> None:
        self.progress = ProgressLog(self.clock)


@dataclass(frozen=True)
class Line:
    """Where a batch's calls go: the client for its endpoint, the shared limiter of that
    endpoint and identity, and the identity's key (for the first-call gate)."""

    client: ImsClient
    limiter: SharedRateLimiter
    identity: str


@dataclass(frozen=True)
class Sent:
    """The last answer to a call made with retries, after how many attempts, at what rate."""

    outcome: Outcome
    attempts: int
    rate: float
    limit: CloudLimit | None = None


# error_code given to rows when IAM refuses to issue a token (wrong user, password or scope).
IAM_REFUSED = "IAM.TOKEN_REFUSED"
PROBE_TTL_MS = 30_000
# How stale a worker's view of "cancelled/aborted" may be: at 1,000 calls/s, 100 calls.
STATE_READ_S = 0.1


async def run_chunk(ctx: EngineContext, job_id: str, number: int) -> str:
    """Work chunk ``number`` of ``job_id``; return what happened (for logs and tests)."""
    bound = structlog.contextvars.bound_contextvars(job_id=job_id, chunk=number)
    with bound:
        out_of_memory: OutOfMemoryError | None = None
        try:
            answer, all_final = await _run_leased(ctx, job_id, number)
        except* OutOfMemoryError as group:
            out_of_memory = cast(OutOfMemoryError, group.exceptions[0])
        if out_of_memory is not None:
            # The lease is kept: it expires and the chunk comes back in a minute, not in a
            # tight loop; what was recorded stays recorded once (its final bit).
            await ctx.store.stop_for_memory(job_id, out_of_memory)
            return "out_of_memory"
        if all_final:
            try:
                await ctx.store.apply_retention(job_id)
            except RedisError as exc:  # the rows are safe; only their expiry is not set
                log.warning("retention.failed", error=str(exc))
        return answer


async def _run_leased(ctx: EngineContext, job_id: str, number: int) -> tuple[str, bool]:
    """Lease and work the chunk: (what happened, whether this chunk made every row final)."""
    lease = ChunkLease(ctx.store, job_id, number, lease_s=ctx.lease_s, clock=ctx.clock)
    answer = await lease.acquire()
    if answer != "ok":
        log.info("chunk.skipped", reason=answer)
        return answer, False
    async with lease:
        job = await ctx.store.load_job(job_id)
        try:
            batches = await ctx.store.load_chunk(job_id, number)
        except MalformedChunk as exc:
            log.error("chunk.malformed", error=str(exc))
            return "malformed", False
        if job is None or batches is None:
            log.error("chunk.missing", job_found=job is not None)
            return "missing", False
        lost = False
        run = ChunkRun(ctx, job, lease)
        try:
            await run.work(batches)
        except* LeaseLost:
            lost = True
        if lost:
            log.warning("chunk.lease_lost")
            return "lease_lost", run.all_final
        lease.complete = True
    return "worked", run.all_final


class ChunkRun:
    """The state of one chunk being worked: the job, its lease, and the stop check."""

    def __init__(self, ctx: EngineContext, job: Job, lease: ChunkLease) -> None:
        self.ctx = ctx
        self.job = job
        self.lease = lease
        self.final: set[int] = set()
        self._state = job.state
        self._state_read_at = ctx.clock()
        self._stop_reason: str | None = None
        self._rate_shown_at = 0.0
        self.cancelled_rows = 0
        self.number = lease.number
        self.recorder = Recorder(ctx.store, job, clock=ctx.clock)
        # What the last flush returned (the job's counts, all workers together).
        self.recorded: Recorded | None = None
        # Set when a record of this chunk finished the job (logged at the chunk's end).
        self.finished: JobState | None = None
        # This chunk recorded the job's last row (then its keys get their retention TTL).
        self.all_final = False
        self.tally = CallTally()

    async def work(self, batches: list[ImageBatch]) -> None:
        """Work every batch; what was recorded is flushed before the lease is released, also
        when the chunk stops early (lease lost, cancelled, out of memory)."""
        try:
            await self.work_all(batches)
        finally:
            await self.flush()
        if self.cancelled_rows:
            # One line per chunk, not per row: the report lists the rows.
            log.warning("job.cancelled", state=self._state.value, rows=self.cancelled_rows)
        if self.finished is not None:
            # Here, once every batch of the chunk has logged: a batch whose record went before
            # the last one's may log after it, and job.finished is a job's last line.
            log.info("job.finished", state=self.finished.value, total=self.job.total)

    async def work_all(self, batches: list[ImageBatch]) -> None:
        refs = [ref for batch in batches for tag in batch.tags for ref in tag.refs]
        self.final = await self.ctx.store.final_refs(self.job.job_id, refs)
        if not self.job.state.finished:
            self._state = await self.ctx.store.mark_running(self.job.job_id)
        slots = asyncio.Semaphore(self.ctx.concurrency)

        left = len(batches)
        all_done = asyncio.Event()

        async def one(batch: ImageBatch) -> None:
            nonlocal left
            try:
                async with slots:
                    await self.work_batch(batch)
            finally:
                left -= 1
                if not left:
                    all_done.set()

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(one(batch))
            if batches:
                # In the group: a flush that fails stops the chunk like any other error.
                group.create_task(self.flush_while(all_done))

    async def flush_while(self, all_done: asyncio.Event) -> None:
        """Flush what is held every ``FLUSH_AGE_S`` while batches are going, so that results
        reach Redis within tens of milliseconds even when no new one comes to trigger it."""
        while not all_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done.wait(), FLUSH_AGE_S)
            if self.recorder.due():
                await self.flush()

    async def stopped(self) -> bool:
        """Whether the job was cancelled or aborted (read from Redis at most every 0.1 s)."""
        if not self._state.finished and self.ctx.clock() - self._state_read_at > STATE_READ_S:
            self._state = await self.ctx.store.job_state(self.job.job_id) or self._state
            self._state_read_at = self.ctx.clock()
        return self._state in (JobState.CANCELLED, JobState.ABORTED)

    async def cancelled(self, *, attempts: int) -> RowResult:
        """The result of a row the job stopped before sending: why it stopped, as the job says
        (read once per chunk)."""
        if self._stop_reason is None:
            self._stop_reason = await self.ctx.store.stop_reason(self.job.job_id)
        return RowResult(RowStatus.CANCELLED, error_message=self._stop_reason, attempts=attempts)

    async def work_batch(self, batch: ImageBatch) -> None:
        tags = tuple(t for t in batch.tags if not all(ref in self.final for ref in t.refs))
        if not tags:
            return
        batch = replace(batch, tags=tags)
        if await self.stopped():
            await self.record(batch, await self.cancelled(attempts=0))
            return
        line = self.line_for(batch)
        options = self.job.options
        if not options.reads_first:
            await self.act(batch, line, "delete")
            return
        read = await self.send(batch, line, "list")
        if read is None:
            return
        if read.outcome.kind is not OutcomeKind.OK:
            await self.finish(batch, read, "list", self.status_for("list", read.outcome))
            return
        current = {tag.key: tag.value for tag in read.outcome.tags or ()}
        # Kept before anything is changed: a backup survives a crash between read and delete.
        kept = await self.ctx.store.observe(
            self.job.job_id,
            {tag.refs[0]: current.get(tag.key) for tag in batch.tags},
            chunk=self.chunk_of(batch),
        )
        if options.mode is Mode.PLAN:
            await self.finish(batch, read, "list", lambda tag: _planned(tag, kept[tag.refs[0]]))
        elif options.mode is Mode.UNDO:
            await self.restore(batch, line, read, current)
        else:
            await self.delete_after_backup(batch, line, read, kept)

    async def delete_after_backup(
        self, batch: ImageBatch, line: Line, read: Sent, kept: dict[int, str | None]
    ) -> None:
        """Delete what the backup read allows: with --match-values, keys holding another
        value than the CSV's are left alone (value_differs) and not sent."""
        send, differs = list(batch.tags), []
        if self.job.options.match_values:
            send = [t for t in batch.tags if kept[t.refs[0]] in (None, t.value)]
            differs = [t for t in batch.tags if kept[t.refs[0]] not in (None, t.value)]
        if differs:
            await self.record(
                replace(batch, tags=tuple(differs)), _result(read, RowStatus.VALUE_DIFFERS)
            )
        if send:
            await self.act(replace(batch, tags=tuple(send)), line, "delete")

    async def restore(
        self, batch: ImageBatch, line: Line, read: Sent, current: dict[str, str]
    ) -> None:
        """Undo: create the keys that are absent now; a key present again is never
        overwritten (kept_newer), and one already holding the backed-up value is restored."""
        missing = [t for t in batch.tags if t.key not in current]
        same = [t for t in batch.tags if current.get(t.key) == t.value]
        newer = [t for t in batch.tags if t.key in current and current[t.key] != t.value]
        for tags, status in ((same, RowStatus.RESTORED), (newer, RowStatus.KEPT_NEWER)):
            if tags:
                await self.record(replace(batch, tags=tuple(tags)), _result(read, status))
        if missing:
            await self.act(replace(batch, tags=tuple(missing)), line, "create")

    def line_for(self, batch: ImageBatch) -> Line:
        endpoint = ims_endpoint(batch.region, self.job.options.endpoint)
        client = self.ctx.client_for(endpoint)
        limiter = self.ctx.limiter_for(endpoint, client.identity)
        return Line(client, limiter, bucket_key(endpoint, client.identity))

    async def act(self, batch: ImageBatch, line: Line, action: Action) -> None:
        """One changing call for the batch (delete or create), its rows recorded."""
        sent = await self.send(batch, line, action)
        if sent is not None:
            await self.finish(batch, sent, action, self.status_for(action, sent.outcome))

    def status_for(self, action: Action, outcome: Outcome) -> RowStatus:
        """Every row's status after a call that decides the batch as a whole."""
        if outcome.kind is OutcomeKind.OK:
            return RowStatus.RESTORED if action == "create" else RowStatus.DELETED
        if outcome.kind is OutcomeKind.NOT_FOUND and self.job.options.mode is Mode.PLAN:
            return RowStatus.IMAGE_NOT_FOUND
        return outcome.row_status

    async def send(self, batch: ImageBatch, line: Line, action: Action) -> Sent | None:
        """Make one call for the batch under the shared rate, retrying what is worth it.

        Returns None when the job stopped first (the rows are then recorded cancelled).
        """
        options = self.job.options
        started, attempt, free = self.ctx.clock(), 0, 0
        while True:
            attempt += 1
            self.lease.check()
            probe = await self.gate(line.identity)
            permit = None
            if probe is not None:
                permit = await line.limiter.acquire(options.rate_per_s, stop=self.stopped)
            rate = permit.rate_per_s if permit is not None else 0.0
            if permit is None or await self.stopped():
                await self.record(batch, await self.cancelled(attempts=attempt - 1))
                return None
            self.lease.check()
            outcome = await self.call(line.client, batch, action)
            self.tally.calls += 1
            if probe:
                await self.settle(line.identity, outcome)
            if outcome.kind is OutcomeKind.THROTTLED:
                self.tally.throttled += 1
                throttling = await line.limiter.throttled(permit, outcome.limit)
                rate = throttling.rate_per_s
                _log_throttling(throttling)
                if throttling.learned is not None:  # for status now: a hold may last minutes
                    await self.show_rate(rate, throttling.learned)
                # A 429 at a known limit or while a window's quota is spent says nothing
                # about this row: all workers hold back together, and it uses up no attempt.
                free += throttling.free
            elif outcome.http_status is not None:
                line.limiter.accepted()
            if not self.retry_allowed(outcome, attempt - free, started):
                return Sent(outcome, attempt, rate, line.limiter.limit)
            delay_s = compute_backoff(
                attempt - free,
                base_s=options.backoff_base_s,
                cap_s=options.backoff_cap_s,
                rng=self.ctx.rng,
                retry_after_s=outcome.retry_after_s,
            )
            self.ctx.progress.retried(
                self.job.job_id, throttled=outcome.kind is OutcomeKind.THROTTLED
            )
            log.info(
                "batch.retry",
                **_fields(batch, outcome, attempt, action),
                latency_ms=round(outcome.latency_ms, 1),
                delay_s=round(delay_s, 3),
            )
            self.tally.retries += 1
            await self.ctx.sleep(delay_s)

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

    async def call(self, client: ImsClient, batch: ImageBatch, action: Action) -> Outcome:
        tags = [tag.tag for tag in batch.tags]
        project, image = batch.project_id, batch.image_id
        try:
            if action == "list":
                return await client.list_image_tags(project, image)
            if action == "create":
                return await client.tags_action(project, image, tags, action="create")
            if self.job.options.api is Api.V2:
                return await client.tags_action(project, image, tags, action="delete")
            return await client.batch_delete_tags(project, image, tags)
        except AuthError as exc:
            return Outcome(OutcomeKind.UNAUTHORIZED, exc.http_status, IAM_REFUSED, str(exc))

    async def finish(
        self,
        batch: ImageBatch,
        sent: Sent,
        action: Action,
        status: RowStatus | Callable[[TagRows], RowStatus],
    ) -> None:
        """Record the rows a call decided, log it, and check the breakers."""
        outcome = sent.outcome
        base = _result(sent, status if isinstance(status, RowStatus) else outcome.row_status)
        if isinstance(status, RowStatus):  # the usual case: one result shared by every row
            rows = [(ref, base) for tag in batch.tags for ref in tag.refs]
            shown: str = status.value
        else:
            statuses = {tag.key: status(tag) for tag in batch.tags}
            results = {s: replace(base, status=s) for s in set(statuses.values())}
            rows = [(ref, results[statuses[tag.key]]) for tag in batch.tags for ref in tag.refs]
            shown = statuses[batch.tags[0].key].value if len(results) == 1 else "mixed"
        failed = outcome.kind not in (OutcomeKind.OK, OutcomeKind.NOT_FOUND)
        self.hold(batch, rows, request=True, failed=failed)
        counts = Counter(result.status.value for _, result in rows)
        log.log(
            self.level_for(counts),
            "batch.done",
            **_fields(batch, outcome, sent.attempts, action),
            status=shown,
            latency_ms=round(outcome.latency_ms, 1),
            rate=round(sent.rate, 2),
        )
        self.ctx.progress.request(
            self.job.job_id,
            counts,
            latency_ms=outcome.latency_ms,
            throttled=outcome.kind is OutcomeKind.THROTTLED,
        )
        await self.check_breakers(outcome)
        if self.recorder.due() or self.breaker_near():
            await self.flush(sent.rate)
        await self.show_rate(sent.rate, sent.limit)

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

    def after_record(self, recorded: Recorded, rate: float) -> None:
        """The job's last line once its last row is recorded, else its periodic progress."""
        job_id = self.job.job_id
        if recorded.finished is not None:
            self.finished = recorded.finished
            self.ctx.progress.forget(job_id)
            self.ctx.rates_shown.pop(job_id, None)
        else:
            self.ctx.progress.maybe_log(job_id, done=recorded.done, total=self.job.total, rate=rate)

    async def show_rate(self, rate: float, limit: CloudLimit | None = None) -> None:
        """Publish the effective rate (and the cloud's limit, once learnt) when the rate
        moved (1% of the ceiling) or every 2 s."""
        ceiling = self.job.options.rate_per_s
        now = self.ctx.clock()
        job_id = self.job.job_id
        shown = self.ctx.rates_shown.get(job_id)
        if (
            shown is not None
            and abs(rate - shown) < 0.01 * ceiling
            and now - self._rate_shown_at < 2.0
        ):
            return
        if shown is not None and shown < ceiling <= rate:
            log.info("ratelimit.adjusted", rate=round(rate, 2), cause="recovered")
        self.ctx.rates_shown[job_id] = rate
        self._rate_shown_at = now
        await self.ctx.store.publish_rate(job_id, rate, limit)

    async def check_breakers(self, outcome: Outcome) -> None:
        """Abort the job at once on a signature failure or a refused token."""
        reason = None
        if outcome.kind is OutcomeKind.SIGNATURE_FAILED:
            reason = f"AK/SK signature refused ({outcome.error_code}: {outcome.error_message})"
        elif outcome.error_code == IAM_REFUSED:
            reason = f"no token: {outcome.error_message}"
        if reason:
            await self.abort(reason)

    def breaker_near(self) -> bool:
        """Whether the requests counted at the last flush plus those held would trip the
        failure-ratio breaker: then the flush is made now, so that it trips as soon as it
        did when every request was written at once."""
        known = self.recorded or Recorded(0, 0, 0, 0, None)
        held, held_failed = self.recorder.requests
        return self.over_ratio(known.requests + held, known.failed_requests + held_failed)

    def over_ratio(self, requests: int, failed: int) -> bool:
        options = self.job.options
        return requests >= options.breaker_min and failed > options.breaker_ratio * requests

    async def check_failure_ratio(self, recorded: Recorded) -> None:
        """Abort the job when too large a share of its requests failed (counted in Redis,
        all workers together, as of the last flush)."""
        options = self.job.options
        if self.over_ratio(recorded.requests, recorded.failed_requests):
            await self.abort(
                f"{recorded.failed_requests} of {recorded.requests} requests failed "
                f"(more than {options.breaker_ratio:.0%})"
            )

    async def abort(self, reason: str) -> None:
        if await self.ctx.store.stop_job(self.job.job_id, JobState.ABORTED, reason):
            self._state = JobState.ABORTED
            log.error("job.aborted", reason=reason)

    async def record(self, batch: ImageBatch, result: RowResult) -> None:
        """Record one result for every row of the batch (no request counted)."""
        self.hold(batch, [(ref, result) for tag in batch.tags for ref in tag.refs])
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
                status=result.status.value,
                http_status=result.http_status,
                attempt=result.attempts,
                request_id=result.request_id,
            )
        self.ctx.progress.rows(self.job.job_id, Counter({result.status.value: batch.rows}))
        if self.recorder.due():
            await self.flush()

    def hold(
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

    def chunk_of(self, batch: ImageBatch) -> int:
        """The chunk whose results and observations hold the batch's rows."""
        return self.number if batch.origin is None else batch.origin

    async def flush(self, rate: float | None = None) -> None:
        """Write the held results (and the calls made since the last flush); then the job's
        last line or its progress, and the failure-ratio breaker, on what the write returned."""
        recorded = await self.recorder.flush(calls=self.tally.take())
        if recorded is None:
            return
        self.recorded = recorded
        if recorded.added and recorded.done >= self.job.total:
            self.all_final = True
        shown = self.ctx.rates_shown.get(self.job.job_id, 0.0) if rate is None else rate
        self.after_record(recorded, shown)
        await self.check_failure_ratio(recorded)


def _result(sent: Sent, status: RowStatus) -> RowResult:
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


def _log_throttling(throttling: Throttling) -> None:
    """Say what a 429 changed in the shared schedule (info: rate changes and throttling)."""
    rate = round(throttling.rate_per_s, 2)
    if throttling.learned is not None:
        limit = throttling.learned
        log.info("ratelimit.learned", limit=limit.count, window_s=limit.window_s, rate=rate)
    elif throttling.cut:
        log.info("ratelimit.adjusted", rate=rate, cause="429")
    if throttling.held:
        log.info("ratelimit.held", reason="window quota spent", rate=rate)


def _planned(tag: TagRows, current: str | None) -> RowStatus:
    """What a delete would do to a tag, given the value the image holds for its key now."""
    if current is None:
        return RowStatus.ABSENT
    return RowStatus.WOULD_DELETE if current == tag.value else RowStatus.VALUE_DIFFERS


def _fields(batch: ImageBatch, outcome: Outcome, attempt: int, action: Action) -> dict[str, object]:
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
    }
