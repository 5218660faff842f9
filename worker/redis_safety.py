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
from redis.exceptions import RedisError, ResponseError

from worker import keys
from worker.errors import ConfigError
from worker.scripts import STOP_JOB

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis

log = structlog.get_logger("tagsweep.redis")

SAFE_POLICY = "noeviction"
# STOP_JOB, allowed to run when Redis is out of memory (Redis >= 7: a script flag), so that the
# job can say why it stopped; the few bytes it writes are the point of the exception.
STOP_JOB_ALLOW_OOM = "#!lua flags=allow-oom\n" + STOP_JOB


class EvictionRefused(ConfigError):
    """Raised when the Redis server may evict keys (``maxmemory-policy`` not noeviction)."""


def check_server(
    client: redis.Redis, *, allow_eviction: bool = False, distributed: bool = True
) -> list[str]:
    """Refuse a server that may evict keys; return warnings for the caller to show.

    ``EvictionRefused`` unless ``allow_eviction`` (then it is a warning). ``distributed``
    (workers, ``submit``): also warn about a server that keeps nothing on disk.
    """
    warnings: list[str] = []
    policy = _policy(client)
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
    if distributed and _persistent(client) is False:
        warnings.append(
            "this Redis keeps nothing on disk (no AOF, no RDB save): a restart loses every job; "
            "turn on appendonly for distributed use"
        )
    return warnings


def _policy(client: redis.Redis) -> str | None:
    try:
        return str(client.info("memory")["maxmemory_policy"])
    except (RedisError, KeyError):
        pass
    try:
        found = client.config_get("maxmemory-policy")
    except RedisError:
        return None
    return str(found["maxmemory-policy"]) if "maxmemory-policy" in found else None


def _persistent(client: redis.Redis) -> bool | None:
    """Whether the server writes AOF or RDB snapshots; None when it cannot be told."""
    try:
        if int(client.info("persistence").get("aof_enabled", 0)):
            return True
    except RedisError:
        return None
    try:
        save = client.config_get("save").get("save")
    except RedisError:
        return None  # CONFIG disabled: RDB settings unknown
    return None if save is None else bool(str(save).strip())


async def stop_for_memory(client: aioredis.Redis, job_id: str, error: Exception) -> bool:
    """Redis refused a write for want of memory: log it and abort the job with that reason
    (if even that cannot be written, the log line is all there is). Returns whether the job
    was marked."""
    reason = (
        "Redis is out of memory (used memory > maxmemory): workers cannot record results; "
        "raise maxmemory or free memory; its rows not recorded then end cancelled, and "
        "`tagsweep retry JOB --only cancelled` sends them again"
    )
    log.error("redis.out_of_memory", error=str(error).split(". script:")[0], reason=reason)
    for text in (STOP_JOB_ALLOW_OOM, STOP_JOB):  # Redis 6 does not know script flags
        try:
            script = client.register_script(text)
            return bool(await script(keys=[keys.job(job_id)], args=["aborted", reason]))
        except ResponseError:
            continue
        except RedisError:
            break
    return False
