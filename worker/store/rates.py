"""The best 429-free rate of each shared schedule, remembered for the next job (async): the
limiter (worker/limits/placement.py) reads it once per schedule and tells it what it measured."""

from __future__ import annotations

import redis.asyncio as aioredis

from worker import keys
from worker.lua.rates import KEEP_HIGHEST

REMEMBER_S = 30 * 24 * 3600


class RateMemory:
    """Reads and raises the remembered best rate (``keys.rate_best``) of schedules."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._keep = client.register_script(KEEP_HIGHEST)

    async def best_rate(self, bucket: str) -> float:
        """Calls/s the schedule ``bucket`` ran at without a 429 at best (0: none known)."""
        found = await self.redis.get(keys.rate_best(bucket))
        return 0.0 if found is None else float(found)

    async def remember_rate(self, bucket: str, rate_per_s: float) -> float:
        """Keep ``rate_per_s`` if above the best remembered; 30 days more either way. Returns
        the best kept."""
        kept = await self._keep(keys=[keys.rate_best(bucket)], args=[rate_per_s, REMEMBER_S])
        return float(kept)
