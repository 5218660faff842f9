"""The job's timeline (``keys.timeline``): written by the result script, on a real Redis."""

from __future__ import annotations

from typing import Any

from tests.worker.test_store import JOB, make_job
from worker import keys
from worker.jobs import RowResult
from worker.lua.rows import TIMELINE_BUCKET_MS
from worker.model import RowStatus
from worker.store import CallTally, ResultStore


async def redis_bucket(aredis: Any) -> int:
    seconds, micros = await aredis.time()
    return (seconds * 1000 + micros // 1000) // TIMELINE_BUCKET_MS


async def test_a_flush_adds_its_new_rows_and_its_429s_to_the_bucket_of_now(aredis: Any) -> None:
    """Rows already final add nothing; calls throttled count in the same script call."""
    store = await make_job(aredis, total=5)
    before = await redis_bucket(aredis)
    rows = [(ref, RowResult(RowStatus.DELETED)) for ref in (1, 2, 3)]
    await store.record(JOB, rows, calls=CallTally(calls=7, throttled=4))
    await store.record(JOB, rows[:1], calls=CallTally(calls=1))  # a row sent again
    after = await redis_bucket(aredis)

    timeline = await aredis.hgetall(keys.timeline(JOB))
    rows_in = {int(name[1:]): int(n) for name, n in timeline.items() if name[0] == "r"}
    throttled_in = {int(name[1:]): int(n) for name, n in timeline.items() if name[0] == "t"}
    assert sum(rows_in.values()) == 3
    assert sum(throttled_in.values()) == 4
    assert all(before <= bucket <= after for bucket in (*rows_in, *throttled_in))


async def test_the_timeline_is_one_of_the_jobs_keys_and_takes_the_records_ttl(
    aredis: Any,
) -> None:
    """Retention and forget find it; a flush after the job's keys got their TTL (a late
    worker's 429s) gives it the record's rather than leaving it behind."""
    assert keys.timeline(JOB) in keys.job_keys(JOB, 1, [])
    store = await make_job(aredis, total=5)
    await aredis.pexpire(keys.job(JOB), 60_000)
    await store.record(JOB, [], calls=CallTally(calls=1, throttled=1))
    assert 0 < await aredis.pttl(keys.timeline(JOB)) <= 60_000


async def test_a_forgotten_job_gets_no_timeline_back(aredis: Any) -> None:
    store = ResultStore(aredis)
    await store.record(JOB, [(1, RowResult(RowStatus.DELETED))], calls=CallTally(throttled=2))
    assert not await aredis.exists(keys.timeline(JOB))
