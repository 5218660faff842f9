"""Working one batch (one image's tags): the read first when the job reads first, what the
job's mode decides from it (``worker.engine.modes``), and each call made under the shared
rate with retries (``worker.limits.retrying``), its rows recorded by the chunk."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from worker.cloud.outcomes import Outcome, OutcomeKind
from worker.engine.calls import Action, Line, call_ims, line_for
from worker.engine.modes import Decision, decide, status_for
from worker.engine.probe import Turn
from worker.engine.recording import fields, result_of
from worker.limits.limiter import SharedRateLimiter, Throttling
from worker.limits.retrying import Sent, call_under_rate
from worker.model import ImageBatch, RowStatus, TagRows

if TYPE_CHECKING:
    from worker.engine.chunk import ChunkRun

log = structlog.get_logger("tagsweep.worker")


async def work_batch(run: ChunkRun, batch: ImageBatch) -> None:
    """Work the batch's tags that have no result yet."""
    tags = tuple(t for t in batch.tags if not all(ref in run.rows.final for ref in t.refs))
    if not tags:
        return
    batch = replace(batch, tags=tags)
    if await run.stop.stopped():
        await run.record(batch, await run.stop.cancelled(attempts=0))
        return
    line = line_for(run.ctx, batch, run.job.options.endpoint)
    if not run.job.options.reads_first:
        await act(run, batch, line, "delete")
        return
    found = await read_first(run, batch, line)
    if found is not None:
        await carry_out(run, batch, line, *found)


async def read_first(run: ChunkRun, batch: ImageBatch, line: Line) -> tuple[Sent, Decision] | None:
    """Read the image's tags (or take what the paged read found), keep them, and let the
    job's mode decide; None when the read failed or the job stopped (its rows are then
    recorded)."""
    if (kept := listed(run, batch)) is not None:
        return LISTED, decide_listed(run, batch, kept)
    read = await send(run, batch, line, "list")
    if read is None:
        return None
    if read.outcome.kind is not OutcomeKind.OK:
        status = status_for("list", read.outcome, run.job.options.mode)
        await run.finish(batch, read, "list", [status] * len(batch.tags))
        return None
    current = {tag.key: tag.value for tag in read.outcome.tags or ()}
    # Kept before anything is changed: a backup survives a crash between read and delete.
    kept = await run.ctx.store.observe(
        run.job.job_id,
        {tag.refs[0]: current.get(tag.key) for tag in batch.tags},
        chunk=run.rows.chunk_of(batch),
    )
    return read, decide(run.job.options, batch, current, kept)


# The answer rows read in pages are recorded with: no call of their own (attempts 0).
LISTED = Sent(Outcome(OutcomeKind.OK, http_status=200), attempts=0, rate=0.0)


def listed(run: ChunkRun, batch: ImageBatch) -> dict[int, str | None] | None:
    """What the paged read found for every tag of the batch, or None when it did not see the
    image (then the batch reads it itself)."""
    if batch.origin is not None or not run.listed:
        return None
    refs = [tag.refs[0] for tag in batch.tags]
    if not all(ref in run.listed for ref in refs):
        return None
    return {ref: run.listed[ref] for ref in refs}


def decide_listed(run: ChunkRun, batch: ImageBatch, kept: dict[int, str | None]) -> Decision:
    """The mode's decision from the paged read; a plan's statuses are recorded as settled
    rows (no request of their own)."""
    current = {t.key: value for t in batch.tags if (value := kept[t.refs[0]]) is not None}
    decision = decide(run.job.options, batch, current, kept)
    if decision.planned is None:
        return decision
    by_status: dict[RowStatus, list[TagRows]] = {}
    for tag, status in zip(batch.tags, decision.planned, strict=True):
        by_status.setdefault(status, []).append(tag)
    return Decision(settled=tuple((status, tuple(tags)) for status, tags in by_status.items()))


async def carry_out(
    run: ChunkRun, batch: ImageBatch, line: Line, read: Sent, decision: Decision
) -> None:
    """Record what the read decided, then make the call it leaves."""
    if decision.planned is not None:
        await run.finish(batch, read, "list", decision.planned)
        return
    await record_settled(run, batch, read, decision)
    if decision.send:
        await act(run, replace(batch, tags=decision.send), line, decision.action)


async def record_settled(run: ChunkRun, batch: ImageBatch, read: Sent, decision: Decision) -> None:
    """Record the tags the read settled with no call of their own (value_differs, ...)."""
    for status, tags in decision.settled:
        if tags:
            await run.record(replace(batch, tags=tags), result_of(read, status))


async def act(run: ChunkRun, batch: ImageBatch, line: Line, action: Action) -> None:
    """One changing call for the batch (delete or create), its rows recorded."""
    sent = await send(run, batch, line, action)
    if sent is not None:
        status = status_for(action, sent.outcome, run.job.options.mode)
        await run.finish(batch, sent, action, [status] * len(batch.tags))


async def send(run: ChunkRun, batch: ImageBatch, line: Line, action: Action) -> Sent | None:
    """Make one call for the batch under the shared rate, retrying what is worth it.

    Returns None when the job stopped first (the rows are then recorded cancelled).
    """
    ctx = run.ctx
    answer = await call_under_rate(
        line.limiter,
        BatchCall(run, batch, line, action),
        policy=run.job.options,
        clock=ctx.clock,
        sleep=ctx.sleep,
        rng=ctx.rng,
    )
    if isinstance(answer, Sent):
        # The rate to show is the limiter's latest view, not the one the call's permit was
        # granted at: a call in flight while a 429 cut the rate or taught the cloud's limit
        # came back with the rate from before, and showed a spurious "recovered" 2 ms after
        # "ratelimit.learned" (#24).
        return replace(answer, rate=line.limiter.effective_rate_per_s or answer.rate)
    await run.record(batch, await run.stop.cancelled(attempts=answer.attempts))
    return None


class WatchedCall:
    """One call of a batch as ``call_under_rate`` makes it: the lease checked before each
    attempt, the credential probe, and the chunk's counters and log lines. ``attempt``
    makes the call itself (``batch``: what its log lines name)."""

    def __init__(
        self, run: ChunkRun, batch: ImageBatch, limiter: SharedRateLimiter, action: Action
    ) -> None:
        self.run = run
        self.batch = batch
        self.limiter = limiter
        self.bucket = limiter.key  # the credential probe's key too
        self.action = action
        self._turn = Turn.PROVEN

    async def attempt(self) -> Outcome:
        raise NotImplementedError

    async def ready(self) -> bool:
        self.run.lease.check()
        self._turn = await self.run.probe.gate(self.bucket)
        return self._turn is not Turn.STOPPED

    async def stopped(self) -> bool:
        return await self.run.stop.stopped()

    async def call(self) -> Outcome:
        run = self.run
        run.lease.check()
        outcome = await self.attempt()
        run.rows.tally.calls += 1
        if self._turn is Turn.PROBE:
            await run.probe.settle(self.bucket, outcome)
        return outcome

    async def throttled(self, throttling: Throttling) -> None:
        self.run.rows.tally.throttled += 1
        await self.run.rates.throttled(throttling, scope=self.limiter.scope.value)

    def retrying(self, outcome: Outcome, attempt: int, delay_s: float) -> None:
        run = self.run
        log.info(
            "batch.retry",
            **fields(self.batch, outcome, attempt, self.action),
            latency_ms=round(outcome.latency_ms, 1),
            delay_s=round(delay_s, 3),
        )
        run.rows.tally.retries += 1


class BatchCall(WatchedCall):
    """One IMS call of a batch."""

    def __init__(self, run: ChunkRun, batch: ImageBatch, line: Line, action: Action) -> None:
        super().__init__(run, batch, line.limiter, action)
        self.line = line

    async def attempt(self) -> Outcome:
        return await call_ims(self.line.client, self.batch, self.action, self.run.job.options.api)
