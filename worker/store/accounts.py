"""What was learnt about a cloud account and kept for every worker: the resource type TMS
names for IMS images (``keys.tms_resource_type``), and the limits the shared limiter learnt
for an endpoint and identity (``keys.rate_memory``), which ``tagsweep doctor`` shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from worker import keys
from worker.model import CloudLimit


@dataclass(frozen=True)
class LearntRate:
    """What the cloud taught about one schedule: the limit a 429 named, or the calls/s it was
    measured to accept (either may be missing)."""

    limit: CloudLimit | None = None
    known_per_s: float | None = None

    def __str__(self) -> str:
        """``200 calls per 5 min (named by a 429)``, ``12.5 calls/s accepted``."""
        said = [f"{self.limit} (named by a 429)"] if self.limit else []
        if self.known_per_s:
            said.append(f"{self.known_per_s:,.3g} calls/s accepted")
        return ", ".join(said)


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

    async def learnt_rate(self, bucket: str) -> LearntRate | None:
        """What the limiter's THROTTLED script kept for the schedule ``bucket``
        (``keys.rate_bucket``); None when nothing was learnt (or it expired)."""
        found = cast(dict[str, str], await self.redis.hgetall(keys.rate_memory(bucket)))
        count, window_ms = _number(found.get("limit")), _number(found.get("window_ms"))
        limit = CloudLimit(int(count), window_ms / 1000) if count and window_ms else None
        known = _number(found.get("known")) or None
        return LearntRate(limit, known) if limit or known else None


def _number(text: object) -> float:
    """A hash field's number (0 when absent or not a number)."""
    try:
        return float(str(text)) if text is not None else 0.0
    except ValueError:
        return 0.0
