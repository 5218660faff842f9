"""What every part of the command line's job store holds: one synchronous Redis client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis


class StorePart:
    """A part of ``JobStore``; the parts are put together in ``producer.store``."""

    def __init__(self, client: redis.Redis) -> None:
        """``client`` must decode responses (``decode_responses=True``), as ``connect_redis``
        gives it."""
        self.client = client

    def now_ms(self) -> int:
        """Redis's clock, in ms."""
        seconds, micros = self.client.time()
        return int(seconds * 1000 + micros // 1000)


def counts_of(raw: Mapping[str, str]) -> dict[str, int]:
    """A job's counts hash as status -> rows, the statuses with none left out."""
    return {status: int(n) for status, n in raw.items() if int(n)}
