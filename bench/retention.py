"""Retention of a finished 10M-row job (25,000 chunks): how long Redis is blocked.

    python -m bench.retention [--chunks 25000]

Giving every key of a job its TTL is a Lua script, and Redis serves nobody else while one
runs. The baseline gives all the keys their TTL in one call; tagsweep calls it for 1,000 keys
at a time (``worker.retention.KEYS_PER_CALL``). Prints the longest single call (Redis' SLOWLOG)
and the total time of each, then of ``forget``. Uses REDIS_URL's server, database 7, flushed
before and after.
"""

from __future__ import annotations

import argparse
import os
import time

import redis

from producer.retention import forget_job
from worker import keys, retention

BENCH_DB = 7
JOB = "bench-retention"


def write_job(client: redis.Redis, chunks: int) -> None:
    """A finished job of ``chunks`` chunks of 2.6 kB (100 requests of a few tags)."""
    pipe = client.pipeline(transaction=False)
    for number in range(chunks):
        pipe.set(keys.chunk(JOB, number), "x" * 2600)
        if number % 1000 == 999:
            pipe.execute()
    record = {"state": "completed", "total": 1, "chunks": chunks, "next_chunk": chunks}
    record |= {"finished_at": int(time.time() * 1000), "keep_ms": 86_400_000}
    pipe.hset(keys.job(JOB), mapping=record)
    pipe.execute()


def timed_retention(client: redis.Redis, per_call: int) -> tuple[float, float]:
    """(total seconds, longest script call in ms) of applying retention."""
    retention.KEYS_PER_CALL = per_call
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    started = time.perf_counter()
    retention.apply_retention(client, JOB)
    total = time.perf_counter() - started
    calls = [e for e in client.slowlog_get(1_000_000) if "EVALSHA" in str(e["command"]).upper()]
    return total, max(e["duration"] for e in calls) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=25_000)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    client = redis.Redis.from_url(f"{url}/{BENCH_DB}", decode_responses=True)
    slowlog = client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    default = retention.KEYS_PER_CALL
    try:
        for name, per_call in (("one call (baseline)", 10**9), ("tagsweep", default)):
            client.flushdb()
            write_job(client, args.chunks)
            total, longest = timed_retention(client, per_call)
            print(
                f"{name:<20} {args.chunks:,} chunks: {total * 1000:,.0f} ms in all, "
                f"Redis blocked at most {longest:,.1f} ms at once"
            )
        started = time.perf_counter()
        deleted = forget_job(client, JOB)
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"forget               {deleted:,} keys in {elapsed_ms:,.0f} ms")
    finally:
        retention.KEYS_PER_CALL = default
        client.config_set("slowlog-log-slower-than", slowlog)
        client.flushdb()


if __name__ == "__main__":
    main()
