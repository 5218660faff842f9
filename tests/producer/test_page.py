"""The job page's reads on a real Redis: the rows that did not end well, and the timeline's
points (the pages themselves are tested in Chromium: tests/e2e/test_page.py)."""

from __future__ import annotations

from typing import Any

import redis

from producer.page.failures import SHOWN_ROWS, FailureCache, find_failures
from producer.page.views import read_summary, timeline_points
from producer.store import JobStore
from tests.conftest import UNIT_DB
from worker import keys
from worker.formats import encode_chunk
from worker.jobs import Job, JobOptions, JobState, RowResult
from worker.lua.rows import TIMELINE_BUCKET_MS
from worker.model import ImageBatch, RowStatus, TagRows
from worker.store import ResultStore

JOB = "page1"
ROWS = 60


async def make_job(aredis: Any) -> tuple[ResultStore, JobStore]:
    """A job of ROWS rows, one image a row, in two chunks."""
    batches = [
        ImageBatch("r", "p", f"img-{ref}", (TagRows("env", "a", (ref,)),)) for ref in range(ROWS)
    ]
    await aredis.set(keys.chunk(JOB, 0), encode_chunk(batches[:30]))
    await aredis.set(keys.chunk(JOB, 1), encode_chunk(batches[30:]))
    record = {"state": "running", "total": ROWS, "chunks": 2, "options": JobOptions().to_json()}
    await aredis.hset(keys.job(JOB), mapping=record)
    url = aredis.connection_pool.connection_kwargs
    sync = redis.Redis(host=url["host"], port=url["port"], db=UNIT_DB, decode_responses=True)
    return ResultStore(aredis), JobStore(sync)


def rejected(n: int) -> RowResult:
    return RowResult(RowStatus.REJECTED, 400, "IMG.0024", f"reserved {n}", 1)


async def test_failed_rows_are_grouped_counted_whole_and_shown_first_20_each(aredis: Any) -> None:
    """A group lists 20 rows but counts all; a row that failed and then, sent again, was
    deleted is not listed."""
    store, page_store = await make_job(aredis)
    await store.record(JOB, [(ref, RowResult(RowStatus.DELETED)) for ref in range(30)])
    failed = [(ref, rejected(ref)) for ref in range(30, 55)]
    await store.record(JOB, failed, chunk=1)
    await store.record(JOB, [(55, RowResult(RowStatus.FORBIDDEN, 403, "IMG.0003", "no"))], chunk=1)
    await aredis.setbit(keys.final(JOB), 54, 0)  # row 54 made pending (a retry) ...
    await aredis.hincrby(keys.counts(JOB), "rejected", -1)
    await store.record(JOB, [(54, RowResult(RowStatus.DELETED))], chunk=1)  # ... then deleted

    summary = read_summary(page_store, JOB)
    groups = find_failures(page_store, summary.status)

    assert [(g.status, g.error_code, g.count) for g in groups] == [
        ("rejected", "IMG.0024", 24),
        ("forbidden", "IMG.0003", 1),
    ]
    assert len(groups[0].rows) == SHOWN_ROWS
    assert [row.image_id for row in groups[0].rows] == [f"img-{ref}" for ref in range(30, 50)]
    assert groups[0].rows[0].result.error_message == "reserved 30"
    assert FailureCache().failures(page_store, summary) == groups


def test_the_timeline_has_a_point_per_bucket_from_start_to_end() -> None:
    """Empty buckets are points too; a job not started has none."""
    start = 1_000 * TIMELINE_BUCKET_MS + 1
    job = Job(JOB, JobState.COMPLETED, ROWS, 1, JobOptions(), started_at_ms=start)
    ended = Job(
        JOB,
        JobState.COMPLETED,
        ROWS,
        1,
        JobOptions(),
        started_at_ms=start,
        finished_at_ms=start + 4 * TIMELINE_BUCKET_MS,
    )
    raw = {"r1001": 5, "t1001": 2, "r1004": 1}
    points = timeline_points(raw, ended, 0)
    assert [(p.rows, p.throttled) for p in points] == [(0, 0), (5, 2), (0, 0), (0, 0), (1, 0)]
    assert points[1].at_ms == 1001 * TIMELINE_BUCKET_MS
    assert len(timeline_points({}, job, start + 25_000)) == 3  # running: up to now
    queued = Job(JOB, JobState.QUEUED, ROWS, 1, JobOptions())
    assert timeline_points({}, queued, start) == []


async def test_a_running_jobs_failed_rows_are_read_again_once_one_more_row_failed(
    aredis: Any,
) -> None:
    store, page_store = await make_job(aredis)
    cache = FailureCache()
    await store.record(JOB, [(0, rejected(0))])
    first = cache.failures(page_store, read_summary(page_store, JOB))
    await store.record(JOB, [(1, RowResult(RowStatus.DELETED))])
    assert cache.failures(page_store, read_summary(page_store, JOB)) is first  # kept
    await store.record(JOB, [(2, rejected(2))])
    again = cache.failures(page_store, read_summary(page_store, JOB))
    assert [g.count for g in first] == [1]
    assert [g.count for g in again] == [2]
