"""Working one chunk: lease, skip what is final, call IMS per image under the shared rate,
retry what is worth retrying, record every row, stop on cancel or abort.

Nothing here knows Celery: a task calls ``run_chunk`` and so can a test (the parts are listed
in ``worker.engine``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

import structlog
from redis.exceptions import OutOfMemoryError, RedisError

from worker.engine.background import REDIS_LOST
from worker.engine.chunk import ChunkRun
from worker.engine.context import EngineContext
from worker.engine.lease import ChunkLease, LeaseAnswer
from worker.errors import LeaseLost, MalformedChunk
from worker.redis_safety import stop_for_memory
from worker.retention import apply_retention_async

log = structlog.get_logger("tagsweep.worker")


class ChunkOutcome(StrEnum):
    """What working a chunk came to (for logs and tests)."""

    WORKED = "worked"
    BUSY = "busy"  # its lease is held by a live worker
    DONE = "done"  # nothing was left to do in it
    LEASE_LOST = "lease_lost"
    MALFORMED = "malformed"
    MISSING = "missing"  # the job or the chunk is not in Redis
    OUT_OF_MEMORY = "out_of_memory"
    REDIS_LOST = "redis_lost"  # Redis dropped while it was worked


async def run_chunk(ctx: EngineContext, job_id: str, number: int) -> ChunkOutcome:
    """Work chunk ``number`` of ``job_id``; return what happened."""
    bound = structlog.contextvars.bound_contextvars(job_id=job_id, chunk=number)
    with bound:
        out_of_memory: OutOfMemoryError | None = None
        lost: BaseExceptionGroup[Exception] | None = None
        try:
            answer, all_final = await _run_leased(ctx, job_id, number)
        except* OutOfMemoryError as group:
            out_of_memory = cast(OutOfMemoryError, group.exceptions[0])
        except* REDIS_LOST as group:
            lost = group
        if lost is not None and out_of_memory is None:
            # Redis dropped under the chunk: one warning, not a traceback per task. The lease
            # is kept: the chunk is worked again once Redis is back (rows recorded stay once).
            error = lost.exceptions[0]
            log.warning(
                "chunk.redis_lost",
                error=str(error).splitlines()[0] or repr(error),
                reason="Redis dropped; the chunk is worked again once it is back",
            )
            return ChunkOutcome.REDIS_LOST
        if out_of_memory is not None:
            # The lease is kept: it expires and the chunk comes back in a minute, not in a
            # tight loop; what was recorded stays recorded once (its final bit).
            await stop_for_memory(ctx.store, job_id, out_of_memory)
            return ChunkOutcome.OUT_OF_MEMORY
        if all_final:
            try:
                await apply_retention_async(ctx.store, job_id)
            except RedisError as exc:  # the rows are safe; only their expiry is not set
                log.warning("retention.failed", error=str(exc))
        return answer


async def _run_leased(ctx: EngineContext, job_id: str, number: int) -> tuple[ChunkOutcome, bool]:
    """Lease and work the chunk: (what happened, whether this chunk made every row final)."""
    lease = ChunkLease(ctx.store, job_id, number, lease_s=ctx.lease_s, clock=ctx.clock)
    answer = await lease.acquire()
    if answer is not LeaseAnswer.OK:
        log.info("chunk.skipped", reason=answer.value)
        return ChunkOutcome(answer.value), False
    async with lease:
        job = await ctx.store.load_job(job_id)
        try:
            batches = await ctx.store.load_chunk(job_id, number)
        except MalformedChunk as exc:
            log.error("chunk.malformed", error=str(exc))
            return ChunkOutcome.MALFORMED, False
        if job is None:
            # Forgotten (or expired) while its message waited: nothing is wrong, nothing to do.
            log.debug("chunk.dropped", reason="the job is no longer in Redis")
            return ChunkOutcome.MISSING, False
        if batches is None:
            log.error("chunk.missing", job_found=True)
            return ChunkOutcome.MISSING, False
        lost = False
        run = ChunkRun(ctx, job, lease)
        try:
            await run.work(batches)
        except* LeaseLost:
            lost = True
        if lost:
            log.warning("chunk.lease_lost")
            return ChunkOutcome.LEASE_LOST, run.all_final
        lease.mark_complete()
    return ChunkOutcome.WORKED, run.all_final
