"""The Redis server itself rather than its jobs: whether it answers, shutting it down, and
copying another server's keys in (a stray append-only file, ``producer.stray_aof``); and what
the benchmarks (``bench/``) measure of it: memory, the slow log, a scratch database emptied."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


def empty_database(client: redis.Redis) -> None:
    """FLUSHDB: a benchmark's own scratch database, emptied before and after it."""
    client.flushdb()


def used_memory_bytes(client: redis.Redis) -> int:
    """The server's ``used_memory`` (INFO memory)."""
    return int(client.info("memory")["used_memory"])


def keys_bytes(client: redis.Redis, match: str) -> int:
    """MEMORY USAGE (exact: SAMPLES 0) of every key ``match`` (a SCAN pattern) finds."""
    found = client.scan_iter(match=match, count=1000)
    return sum(int(client.memory_usage(key, samples=0) or 0) for key in found)


@contextmanager
def slow_log_of_every_call(client: redis.Redis) -> Iterator[None]:
    """The slow log records every command while inside (its threshold restored after)."""
    threshold = str(client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"])
    client.config_set("slowlog-log-slower-than", 0)
    try:
        yield
    finally:
        client.config_set("slowlog-log-slower-than", threshold)


def reset_slow_log(client: redis.Redis) -> None:
    client.slowlog_reset()


def longest_call_ms(client: redis.Redis, command: str) -> float:
    """The longest call of ``command`` (EVALSHA, say) in the slow log, in ms (0: none)."""
    calls = [e for e in client.slowlog_get(1_000_000) if command in str(e["command"]).upper()]
    return max((e["duration"] for e in calls), default=0) / 1000
