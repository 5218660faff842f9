"""The Redis server itself rather than its jobs: whether it answers, shutting it down, and
copying another server's keys in (a stray append-only file, ``producer.stray_aof``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis


def answers(client: redis.Redis) -> bool:
    """Whether the server answers a PING (its errors are the caller's to handle)."""
    return bool(client.ping())


def shut_down(client: redis.Redis) -> None:
    """SHUTDOWN with a final write of its data."""
    client.shutdown(nosave=False)


def copy_keys(source: redis.Redis, target: redis.Redis) -> int:
    """Copy every key of ``source`` into ``target``, or the parts of it ``target`` lacks;
    return how many keys were added or merged."""
    return sum(_copy_key(source, target, key) for key in source.scan_iter(count=1000))


def _copy_key(source: redis.Redis, target: redis.Redis, key: bytes) -> bool:
    """Copy one key whole (DUMP/RESTORE) when ``target`` lacks it; else add the members or
    fields it lacks (a string or list both hold: the target's stands). Whether anything was
    written."""
    if not target.exists(key):
        payload: Any = source.dump(key)
        if payload is None:  # expired meanwhile
            return False
        ttl_ms = max(0, int(source.pttl(key)))
        target.restore(key, ttl_ms, payload)
        return True
    kind = source.type(key)
    if kind == b"zset":
        return bool(target.zadd(key, dict(source.zscan_iter(key)), nx=True))
    if kind == b"set":
        return bool(target.sadd(key, *source.sscan_iter(key)))
    if kind == b"hash":
        added = [target.hsetnx(key, f, v) for f, v in source.hscan_iter(key)]
        return any(added)
    return False
