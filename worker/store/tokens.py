"""Sealed IAM tokens in Redis (``worker.cloud.tokencache`` seals and opens them; Redis only keeps
the sealed text), and the short lock that makes a renewal single-flight across hosts."""

from __future__ import annotations

import redis.asyncio as aioredis

from worker import keys


class TokenStore:
    """Sealed tokens of one identity (``digest``), per project."""

    def __init__(self, client: aioredis.Redis, digest: str) -> None:
        self.redis = client
        self.digest = digest

    def _key(self, project_id: str) -> str:
        return keys.token_cache(self.digest, project_id)

    async def sealed(self, project_id: str) -> str | None:
        found = await self.redis.get(self._key(project_id))
        return None if found is None else str(found)

    async def put(self, project_id: str, sealed: bytes, ttl_s: int) -> None:
        await self.redis.set(self._key(project_id), sealed, ex=ttl_s)

    async def lock(self, project_id: str, ttl_ms: int) -> bool:
        """Take the renewal lock of a project's token; False if another holds it."""
        return bool(await self.redis.set(self._lock(project_id), "1", nx=True, px=ttl_ms))

    async def unlock(self, project_id: str) -> None:
        await self.redis.delete(self._lock(project_id))

    def _lock(self, project_id: str) -> str:
        return keys.token_lock(self.digest, project_id)
