"""The job page of a 500,000-row job: how long ``/`` and ``/jobs/JOB`` take, and the bytes of
its timeline and failure index.

    python -m bench.page [--images 125000] [--tags 4] [--failed 100] [--repeat 20]
                         [--without-index] [--profile]

Builds a finished job of IMAGES x TAGS rows through the stores, as submit and the workers
write it (``producer.submit.write_record``, ``JobStore.write_chunks``, the workers'
``ResultStore.record_entries`` with one result per request, FAILED of them rejected and spread
over the job, the last in its last chunk), started an hour ago. The result script puts every
row in the bucket of now (Redis time cannot be set); the bench then spreads the timeline
over the hour as workers would have written it, 360 buckets of rows and 429s, and prints its
MEMORY USAGE per input row, and that of the job's failure index (``--without-index`` drops
the index: a job recorded before it, whose page reads every chunk). Then serves the page
(``PageApp`` on a loopback port, as the exporter does) and prints the median and the slowest
of REPEAT GETs of ``/`` and of ``/jobs/JOB`` (its groups of failed rows kept from the first
load, which is timed apart: it reads the results until every failed row is found), then the
same job's page as if it were still running (read again once, then kept while no more rows
fail). Uses REDIS_URL's server, database 6, flushed before and after. Takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.request
import uuid

import redis
import redis.asyncio as aioredis

from bench.common import bench_redis_url
from producer.page.app import PageApp, serve
from producer.store import JobStore
from producer.store.server import (
    empty_database,
    longest_call_ms,
    reset_slow_log,
    slow_log_of_every_call,
)
from producer.submit import write_record
from worker.jobs import JobOptions, JobState, RowResult
from worker.lua.rows import TIMELINE_BUCKET_MS
from worker.model import ImageBatch, RowStatus, TagRows
from worker.store import Entry, ResultStore

PAGE_DB = 6
JOB = "bench-page"
CHUNK_REQUESTS = 100  # submit's default


def build_chunks(images: int, tags: int) -> list[list[ImageBatch]]:
    """One request per image (its ``tags`` rows), ``CHUNK_REQUESTS`` a chunk."""
    batches = [
        ImageBatch(
            "ap-southeast-1",
            "0123456789abcdef0123456789abcdef",
            str(uuid.uuid4()),
            tuple(TagRows(f"key-{t}", "v", (n * tags + t,)) for t in range(tags)),
        )
        for n in range(images)
    ]
    return [batches[i : i + CHUNK_REQUESTS] for i in range(0, len(batches), CHUNK_REQUESTS)]


def result_for(number: int, failing: set[int], at_ms: int) -> RowResult:
    if number in failing:
        message = "The tag key _sys_managed is reserved."
        return RowResult(RowStatus.REJECTED, 400, "IMG.0024", message, 1, uuid.uuid4().hex, at_ms)
    return RowResult(RowStatus.DELETED, 204, None, None, 1, uuid.uuid4().hex, at_ms)


async def record_all(url: str, chunks: list[list[ImageBatch]], failed: int) -> None:
    """Every row's result, a chunk per script call (one entry per request)."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    store = ResultStore(client)
    requests = sum(len(chunk) for chunk in chunks)
    failing = {requests - 1 - n * (requests // max(failed, 1)) for n in range(failed)}
    at_ms, number = int(time.time() * 1000), 0
    goals = JobOptions().goals
    for index, chunk in enumerate(chunks):
        entries = []
        for batch in chunk:
            refs = tuple(ref for tag in batch.tags for ref in tag.refs)
            entries.append(Entry(index, refs, result_for(number, failing, at_ms)))
            number += 1
        await store.record_entries(JOB, entries, requests=len(chunk), goals=goals)
    await client.aclose()


def spread_timeline(client: redis.Redis, rows: int, started_ms: int, now_ms: int) -> int:
    """The timeline of an hour's job, as its workers' flushes would have written it."""
    first, last = started_ms // TIMELINE_BUCKET_MS, now_ms // TIMELINE_BUCKET_MS
    buckets = range(first, last + 1)
    per_bucket = rows // len(buckets)
    fields: dict[str, int] = {}
    for bucket in buckets:
        fields[f"r{bucket}"] = per_bucket
        fields[f"t{bucket}"] = 3 + bucket % 7
    fields[f"r{last}"] = per_bucket + rows - per_bucket * len(buckets)
    return JobStore(client).write_timeline(JOB, fields)


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (loopback)
        answer.read()
    return (time.perf_counter() - started) * 1000


def time_pages(client: redis.Redis, repeat: int) -> None:
    server, _ = serve(PageApp(client, lambda _e, _s: []), "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_port}"
    with slow_log_of_every_call(client):
        reset_slow_log(client)
        first_ms = timed_get(f"{base}/jobs/{JOB}")
        longest_ms = longest_call_ms(client, "EVALSHA")
    print(f"GET /jobs/{JOB}, first load (failed rows found): {first_ms:.0f} ms")
    print(f"  its scan: the longest script call blocked Redis {longest_ms:.1f} ms")
    for path in ("/", f"/jobs/{JOB}"):
        times = [timed_get(base + path) for _ in range(repeat)]
        print(
            f"GET {path}: median {statistics.median(times):.1f} ms, "
            f"slowest {max(times):.1f} ms ({repeat} GETs)"
        )
    # The same job seen as running: its first GET reads the failed rows again (a new pass for
    # the page), the next ones keep them while no more rows fail.
    JobStore(client).write_record(
        JOB, {"state": "running", "finished_at": ""}, created_at_ms=JobStore(client).now_ms()
    )
    times = [timed_get(f"{base}/jobs/{JOB}") for _ in range(5)]
    print(
        f"GET /jobs/{JOB} seen as running: first {times[0]:.0f} ms, then median "
        f"{statistics.median(times[1:]):.1f} ms (4 GETs)"
    )
    server.shutdown()


def profile_failures(client: redis.Redis) -> None:
    """Where the first load's time goes (cProfile, the 12 costliest calls)."""
    import cProfile
    import pstats

    from producer.page.failures import find_failures
    from producer.page.views import read_summary

    store = JobStore(client)
    status = read_summary(store, JOB).status
    with cProfile.Profile() as profile:
        find_failures(store, status)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=125_000)
    parser.add_argument("--tags", type=int, default=4)
    parser.add_argument("--failed", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="store_true", help="Profile the first load.")
    parser.add_argument(
        "--without-index", action="store_true", help="Drop the failure index (an older job)."
    )
    args = parser.parse_args()
    url = bench_redis_url(PAGE_DB)
    client = redis.Redis.from_url(url, decode_responses=True)
    empty_database(client)
    try:
        rows = args.images * args.tags
        chunks = build_chunks(args.images, args.tags)
        now_ms = JobStore(client).now_ms()
        started_ms = now_ms - 3600 * 1000
        options = JobOptions()
        write_record(client, JOB, JobState.RUNNING, rows, len(chunks), options, [], "", started_ms)
        JobStore(client).write_record(JOB, {"started_at": started_ms}, created_at_ms=started_ms)
        JobStore(client).write_chunks(JOB, chunks, first=0)
        built = time.perf_counter()
        asyncio.run(record_all(url, chunks, args.failed))
        took_s = time.perf_counter() - built
        print(f"{rows:,} rows in {len(chunks):,} chunks recorded in {took_s:.1f} s")
        record = JobStore(client).read_record(JOB)
        print(f"job state {record['state']}, counts {JobStore(client).read_counts(JOB)}")
        size = spread_timeline(client, rows, started_ms, int(record["finished_at"]))
        print(f"timeline: {size:,} bytes ({size / rows:.3f} bytes per input row)")
        size = JobStore(client).failed_chunks_bytes(JOB)
        print(f"failure index: {size:,} bytes ({size / rows:.4f} bytes per input row)")
        if args.without_index:
            JobStore(client).drop_failed_chunks(JOB)
        if args.profile:
            profile_failures(client)
        time_pages(client, args.repeat)
    finally:
        empty_database(client)


if __name__ == "__main__":
    main()
