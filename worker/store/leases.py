"""Chunk leases in Redis, as the worker holding a chunk takes, renews and releases its lease
(async; ``worker.engine.lease`` says why leases; the reaper's side is ``worker.store.sync``)."""

from __future__ import annotations

import redis.asyncio as aioredis

from worker import keys
from worker.lua.leases import ACQUIRE_LEASE, RELEASE_LEASE, RENEW_LEASE


class LeaseStore:
    """Takes, renews and releases chunk leases."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._acquire = client.register_script(ACQUIRE_LEASE)
        self._renew = client.register_script(RENEW_LEASE)
        self._release = client.register_script(RELEASE_LEASE)

    async def acquire_lease(self, job_id: str, number: int, owner: str, ttl_ms: int) -> str:
        return str(
            await self._acquire(
                keys=[keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)],
                args=[keys.lease_member(job_id, number), owner, ttl_ms, number],
            )
        )

    async def renew_lease(
        self, job_id: str, number: int, owner: str, ttl_ms: int, *, worked_ms: int = 0
    ) -> bool:
        """Extend the lease; ``worked_ms``: how long it was held since it was last said (it
        counts in the job's active time)."""
        answer = await self._renew(
            keys=[keys.LEASES, keys.LEASE_OWNERS, keys.job(job_id)],
            args=[keys.lease_member(job_id, number), owner, ttl_ms, worked_ms],
        )
        return bool(answer == "ok")

    async def release_lease(
        self, job_id: str, number: int, owner: str, *, complete: bool, worked_ms: int = 0
    ) -> None:
        """Drop the lease (the chunk done when ``complete``); ``worked_ms`` as for renew."""
        await self._release(
            keys=[keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id), keys.job(job_id)],
            args=[
                keys.lease_member(job_id, number),
                owner,
                number,
                "1" if complete else "0",
                worked_ms,
            ],
        )
