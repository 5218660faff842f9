"""What was learnt about a cloud account and kept for every worker: the resource type TMS
names for IMS images (``keys.tms_resource_type``)."""

from __future__ import annotations

import redis.asyncio as aioredis

from worker import keys


class AccountFacts:
    """Facts about accounts, kept in Redis for a while."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def tms_resource_type(self, domain_id: str) -> str | None:
        """The type kept for the account ("" when TMS lists none), None when not asked yet."""
        value = await self.redis.get(keys.tms_resource_type(domain_id))
        return None if value is None else str(value)

    async def keep_tms_resource_type(self, domain_id: str, resource_type: str) -> None:
        await self.redis.set(
            keys.tms_resource_type(domain_id), resource_type, ex=keys.TMS_RESOURCE_TYPE_TTL_S
        )
