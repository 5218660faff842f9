"""Connecting the command line to Redis, with one clear line when that fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.errors import ConfigError
from worker.settings import redact_url

if TYPE_CHECKING:
    import redis


def connect_redis(url: str) -> redis.Redis:
    """A client for ``url`` that answered a PING; ``ConfigError`` (no password shown) if not."""
    import redis  # here: the commands that need no Redis start faster without it

    try:
        # socket_timeout too: a TLS client on a plain port (or the reverse) waits for an answer
        # that never comes.
        probe = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        probe.ping()
        probe.close()
        client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
    except (redis.RedisError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot use Redis at {redact_url(url)}: {reason}") from None
    return client
