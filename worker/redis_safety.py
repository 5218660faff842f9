"""A Redis that may lose tagsweep's data is refused: the start-up check, and what a worker
does when Redis runs out of memory.

Redis is a job's only store (results, chunks, counters), so a server configured as a cache
(``maxmemory`` with an ``allkeys-*`` or ``volatile-*`` policy) would drop rows silently. Celery
warns the same about its Redis broker. The check reads ``maxmemory-policy`` from ``INFO memory``
first, which managed services (that often disable ``CONFIG``) still answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from worker.errors import EvictionRefused
from worker.store.sync import SyncStore

if TYPE_CHECKING:
    import redis

    from worker.store import ResultStore

log = structlog.get_logger("tagsweep.redis")

SAFE_POLICY = "noeviction"


def check_server(
    client: redis.Redis, *, allow_eviction: bool = False, distributed: bool = True
) -> list[str]:
    """Refuse a server that may evict keys; return warnings for the caller to show.

    ``EvictionRefused`` unless ``allow_eviction`` (then it is a warning). ``distributed``
    (workers, ``submit``): also warn about a server that keeps nothing on disk.
    """
    warnings: list[str] = []
    store = SyncStore(client)
    policy = store.eviction_policy()
    if policy is None:
        warnings.append(
            "cannot read this Redis's maxmemory-policy (INFO and CONFIG refused): make sure it "
            f"is {SAFE_POLICY}, or rows may be lost without a trace"
        )
    elif policy != SAFE_POLICY:
        message = (
            f"this Redis has maxmemory-policy {policy}: it may evict tagsweep's results and "
            f"lose rows; set maxmemory-policy {SAFE_POLICY} (CONFIG SET maxmemory-policy "
            f"{SAFE_POLICY}, or use another Redis)"
        )
        if not allow_eviction:
            raise EvictionRefused(message + "; --allow-eviction runs anyway")
        warnings.append(message + " (--allow-eviction: going on anyway)")
    if distributed and store.persistent() is False:
        warnings.append(
            "this Redis keeps nothing on disk (no AOF, no RDB save): a restart loses every job; "
            "turn on appendonly for distributed use"
        )
    return warnings


async def stop_for_memory(store: ResultStore, job_id: str, error: Exception) -> bool:
    """Redis refused a write for want of memory: log it and abort the job with that reason
    (if even that cannot be written, the log line is all there is). Returns whether the job
    was marked."""
    reason = (
        "Redis is out of memory (used memory > maxmemory): workers cannot record results; "
        "raise maxmemory or free memory; its rows not recorded then end cancelled, and "
        "`tagsweep retry JOB --only cancelled` sends them again"
    )
    log.error("redis.out_of_memory", error=str(error).split(". script:")[0], reason=reason)
    return await store.abort_out_of_memory(job_id, reason)
