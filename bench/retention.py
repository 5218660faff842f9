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
import itertools
import os
import random
import time
import uuid

import redis

from producer.retention import forget_job
from producer.store import JobStore
from producer.store.server import (
    empty_database,
    longest_call_ms,
    reset_slow_log,
    slow_log_of_every_call,
)
from worker import retention
from worker.model import ImageBatch, TagRows

BENCH_DB = 7
JOB = "bench-retention"


def write_job(client: redis.Redis, chunks: int) -> None:
    """A finished job of ``chunks`` chunks of about 2.6 kB (38 images of 2 tags, random
    values: a compressed chunk of real rows is that size)."""
    rng = random.Random(7)
    chunk = [
        ImageBatch(
            "r",
            "p",
            str(uuid.UUID(int=rng.getrandbits(128))),
            tuple(TagRows(f"key-{t}", f"{rng.getrandbits(64):x}", (2 * n + t,)) for t in range(2)),
        )
        for n in range(38)
    ]
    store = JobStore(client)
    store.write_chunks(JOB, itertools.repeat(chunk, chunks), first=0)
    now_ms = int(time.time() * 1000)
    record = {"state": "completed", "total": 1, "chunks": chunks, "next_chunk": chunks}
    record |= {"finished_at": now_ms, "keep_ms": 86_400_000}
    store.write_record(JOB, record, created_at_ms=now_ms)


def timed_retention(client: redis.Redis, per_call: int) -> tuple[float, float]:
    """(total seconds, longest script call in ms) of applying retention."""
    retention.KEYS_PER_CALL = per_call
    reset_slow_log(client)
    started = time.perf_counter()
    retention.apply_retention(client, JOB)
    total = time.perf_counter() - started
    return total, longest_call_ms(client, "EVALSHA")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=25_000)
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    client = redis.Redis.from_url(f"{url}/{BENCH_DB}", decode_responses=True)
    default = retention.KEYS_PER_CALL
    try:
        with slow_log_of_every_call(client):
            for name, per_call in (("one call (baseline)", 10**9), ("tagsweep", default)):
                empty_database(client)
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
        empty_database(client)


if __name__ == "__main__":
    main()
