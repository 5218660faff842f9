"""The job's failure index (``keys.failed_chunks``) on a real Redis: set by the result and
cancel scripts, kept and forgotten with the job's other keys, and what the job page reads its
failed rows from (a job recorded before it: every chunk)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import redis

from producer.page import failures
from producer.page.failures import SHOWN_ROWS, find_failures, group_key
from producer.page.views import read_summary
from producer.retention import forget_job
from producer.store import JobStore
from producer.store.page import FailedEntries
from worker import keys
from worker.formats import encode_chunk
from worker.jobs import JobOptions, RowResult
from worker.model import ImageBatch, RowStatus, TagRows
from worker.store import ResultStore

JOB = "index1"
CHUNKS = 4
PER_CHUNK = 30


def batches(number: int) -> list[ImageBatch]:
    refs = range(number * PER_CHUNK, (number + 1) * PER_CHUNK)
    return [ImageBatch("r", "p", f"img-{ref}", (TagRows("env", "a", (ref,)),)) for ref in refs]


async def make_job(aredis: Any, *, chunks: int = CHUNKS) -> tuple[ResultStore, JobStore]:
    """A running job of ``chunks`` chunks (its record's count), the first CHUNKS written."""
    for number in range(CHUNKS):
        await aredis.set(keys.chunk(JOB, number), encode_chunk(batches(number)))
    total = chunks * PER_CHUNK
    options = JobOptions().to_json()
    record = {"state": "running", "total": total, "chunks": chunks, "options": options}
    await aredis.hset(keys.job(JOB), mapping=record)
    pool = aredis.connection_pool.connection_kwargs
    sync = redis.Redis(host=pool["host"], port=pool["port"], db=pool["db"], decode_responses=True)
    return ResultStore(aredis), JobStore(sync)


def rejected(ref: int) -> RowResult:
    return RowResult(RowStatus.REJECTED, 400, "IMG.0024", f"reserved {ref}", 1)


async def test_the_result_script_marks_the_chunks_that_got_rows_outside_the_goals(
    aredis: Any,
) -> None:
    """Rows of a goal status mark nothing; a row already final sent again marks nothing."""
    store, page = await make_job(aredis)
    await store.record(JOB, [(ref, RowResult(RowStatus.DELETED)) for ref in range(30)], chunk=0)
    await store.record(JOB, [(31, RowResult(RowStatus.NOT_FOUND, 404))], chunk=1)
    await store.record(JOB, [(95, rejected(95))], chunk=3)
    await store.record(JOB, [(70, RowResult(RowStatus.FAILED, 500))], chunk=2)
    await store.record(JOB, [(5, rejected(5))], chunk=0)  # final already: not recorded
    assert page.failed_chunks(JOB) == [2, 3]
    assert page.failed_chunks("no-such-job") == []


async def test_cancel_marks_the_chunks_it_records_and_still_counts_them_in_the_timeline(
    aredis: Any,
) -> None:
    """CANCEL_UNSENT shares the result script's body: the keys after the results lists (the
    timeline, the index, then the lease keys) are where it looks for them."""
    _, page = await make_job(aredis)
    cancelled = RowResult(RowStatus.CANCELLED, error_message="cancelled by user")
    assert page.cancel_unsent(JOB, 1, batches(1), cancelled) == PER_CHUNK
    assert page.failed_chunks(JOB) == [1]
    assert sum(n for name, n in page.timeline(JOB).items() if name[0] == "r") == PER_CHUNK
    assert await aredis.sismember(keys.done_chunks(JOB), 1)
    assert page.read_counts(JOB) == {"cancelled": PER_CHUNK}


async def test_the_index_takes_the_records_ttl_and_is_forgotten_with_the_job(
    aredis: Any,
) -> None:
    assert keys.failed_chunks(JOB) in keys.job_keys(JOB, 1, [])  # retention and forget
    store, page = await make_job(aredis)
    await aredis.pexpire(keys.job(JOB), 60_000)
    await store.record(JOB, [(0, rejected(0))])
    assert 0 < await aredis.pttl(keys.failed_chunks(JOB)) <= 60_000
    await aredis.persist(keys.job(JOB))
    await aredis.hset(keys.job(JOB), "state", "completed_with_failures")
    assert forget_job(page.client, JOB) > 0
    assert not await aredis.exists(keys.failed_chunks(JOB))
    await store.record(JOB, [(1, rejected(1))])  # a late worker: the job stays forgotten
    assert not await aredis.exists(keys.failed_chunks(JOB))


def spy_reads(page: JobStore, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The chunk numbers of each script call that reads failed rows."""
    asked: list[list[int]] = []
    read = page.failed_entries

    def spied(job_id: str, numbers: Sequence[int], wished: Any, shown: int) -> list[FailedEntries]:
        asked.append(list(numbers))
        return read(job_id, numbers, wished, shown)

    monkeypatch.setattr(page, "failed_entries", spied)
    return asked


async def record_failures(store: ResultStore) -> None:
    """Chunk 1: 25 rejected rows; chunk 3: one failed (no code: its HTTP status groups it)."""
    await store.record(JOB, [(ref, rejected(ref)) for ref in range(30, 55)], chunk=1)
    await store.record(JOB, [(90, RowResult(RowStatus.FAILED, 503, None, "busy", 3))], chunk=3)


def shown(groups: list[failures.FailureGroup]) -> list[tuple[str, str, int, list[str]]]:
    return [(g.status, g.error_code, g.count, [r.image_id for r in g.rows]) for g in groups]


EXPECTED = [
    ("rejected", "IMG.0024", 25, [f"img-{ref}" for ref in range(30, 30 + SHOWN_ROWS)]),
    ("failed", "503", 1, ["img-90"]),
]


async def test_the_page_reads_the_chunks_the_index_names_only(
    aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job of 400 chunks with failed rows in two: one script call, on those two."""
    store, page = await make_job(aredis, chunks=400)
    await store.record(JOB, [(ref, RowResult(RowStatus.DELETED)) for ref in range(30)])
    await record_failures(store)
    asked = spy_reads(page, monkeypatch)
    groups = find_failures(page, read_summary(page, JOB).status)
    assert shown(groups) == EXPECTED
    assert asked == [[1, 3]]
    assert groups[1].rows[0].result.attempts == 3
    assert group_key(groups[1].rows[0].result) == ("failed", "503")


async def test_a_job_recorded_before_the_index_is_read_whole_and_a_partial_index_completed(
    aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No index: every chunk is read; an index missing a chunk (rows recorded by an older
    worker): the chunks it names, then the others until the counts' rows are all found."""
    store, page = await make_job(aredis, chunks=60)
    await record_failures(store)
    await aredis.setbit(keys.failed_chunks(JOB), 3, 0)
    asked = spy_reads(page, monkeypatch)
    assert shown(find_failures(page, read_summary(page, JOB).status)) == EXPECTED
    others = [n for n in range(60) if n != 1]
    assert asked == [[1], others[: failures.CHUNKS_A_READ]]  # then stops: all rows found
    await aredis.delete(keys.failed_chunks(JOB))
    asked.clear()
    assert shown(find_failures(page, read_summary(page, JOB).status)) == EXPECTED
    assert asked == [list(range(failures.CHUNKS_A_READ))]


async def test_a_group_spread_over_calls_lists_its_first_rows_and_counts_them_all(
    aredis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One chunk a call: each call's groups add up; a row failed, then sent again and
    deleted, is neither counted nor listed; a row made pending again is not either."""
    monkeypatch.setattr(failures, "CHUNKS_A_READ", 1)
    store, page = await make_job(aredis)
    for number in range(CHUNKS):
        refs = range(number * PER_CHUNK, number * PER_CHUNK + 8)
        await store.record(JOB, [(ref, rejected(ref)) for ref in refs], chunk=number)
    await aredis.setbit(keys.final(JOB), 0, 0)  # row 0 sent again (a retry) ...
    await aredis.hincrby(keys.counts(JOB), "rejected", -1)
    await store.record(JOB, [(0, RowResult(RowStatus.DELETED))], chunk=0)  # ... and deleted
    await aredis.setbit(keys.final(JOB), 1, 0)  # row 1 pending again, no result yet
    await aredis.hincrby(keys.counts(JOB), "rejected", -1)
    groups = find_failures(page, read_summary(page, JOB).status)
    listed = [ref for n in range(CHUNKS) for ref in range(n * 30, n * 30 + 8) if ref > 1]
    assert shown(groups) == [
        ("rejected", "IMG.0024", 30, [f"img-{ref}" for ref in listed[:SHOWN_ROWS]])
    ]
    assert groups[0].error_message == "reserved 2"
