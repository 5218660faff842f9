"""Results per request, written in batches: exact counts, last entry wins, nothing lost twice.

Real Redis (the ``aredis`` fixture); the engine tests use the simulator over HTTP.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
import redis
import structlog

from producer.store import JobStore
from tests.helpers import JOB
from worker import keys
from worker.engine.recorder import Recorder
from worker.jobs import Job, JobOptions, JobState, RowResult
from worker.model import RowStatus
from worker.store import Entry, ResultStore

DELETED = RowResult(RowStatus.DELETED, 204, None, None, 1, "req-1", 1_700_000_000_000)
FAILED = RowResult(RowStatus.FAILED, 503, "SVC.503", "busy", 8, "req-2", 1_700_000_000_001)


async def make_job(aredis: Any, total: int) -> ResultStore:
    await aredis.hset(
        keys.job(JOB),
        mapping={
            "state": "running",
            "total": total,
            "chunks": 2,
            "options": JobOptions().to_json(),
        },
    )
    return ResultStore(aredis)


def sync_client(aredis: Any) -> redis.Redis:
    kwargs = aredis.connection_pool.connection_kwargs
    return redis.Redis(
        host=kwargs["host"], port=kwargs["port"], db=kwargs["db"], decode_responses=True
    )


async def test_a_flush_sent_twice_counts_and_writes_each_row_once(aredis: Any) -> None:
    store = await make_job(aredis, total=5)
    entries = [Entry(0, (1, 2, 3), DELETED), Entry(1, (4,), FAILED)]
    first = await store.record_entries(JOB, entries, requests=2, failed=1)
    again = await store.record_entries(JOB, entries, requests=2, failed=1)
    assert (first.added, first.done, again.added, again.done) == (4, 4, 0, 4)
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "3", "failed": "1"}
    # Requests are counted as sent: a request sent twice was sent twice.
    assert (again.requests, again.failed_requests) == (4, 2)
    assert await aredis.llen(keys.chunk_results(JOB, 0)) == 1
    assert await store.chunk_results(JOB, 0) == {1: DELETED, 2: DELETED, 3: DELETED}
    assert await store.chunk_results(JOB, 1) == {4: FAILED}
    assert await store.final_refs(JOB, [0, 1, 2, 3, 4, 5]) == {1, 2, 3, 4}


async def test_a_row_named_twice_in_one_entry_or_flush_is_counted_once(aredis: Any) -> None:
    store = await make_job(aredis, total=2)
    recorded = await store.record_entries(
        JOB, [Entry(0, (7, 7), DELETED), Entry(0, (7, 8), FAILED)], requests=1
    )
    assert (recorded.added, recorded.done) == (2, 2)
    assert recorded.finished is not None
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "1", "failed": "1"}
    assert await store.chunk_results(JOB, 0) == {7: DELETED, 8: FAILED}


async def test_after_a_retry_the_last_entry_of_a_row_wins(aredis: Any) -> None:
    store = await make_job(aredis, total=3)
    await store.record_entries(JOB, [Entry(0, (0, 1), FAILED), Entry(0, (2,), DELETED)])
    client = sync_client(aredis)
    jobs = JobStore(client)
    rows = jobs.rows_in(JOB, 1, {"failed"})
    assert rows == {0: (0, "failed"), 1: (0, "failed")}
    jobs.reset_rows(JOB, rows)
    # Pending again: the old entry no longer counts, nor shows.
    assert jobs.chunk_results(JOB, 0) == {2: DELETED}
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "1", "failed": "0"}
    recorded = await store.record_entries(JOB, [Entry(0, (0, 1), DELETED)], requests=1)
    assert (recorded.added, recorded.done) == (2, 3)
    assert jobs.chunk_results(JOB, 0) == {0: DELETED, 1: DELETED, 2: DELETED}
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "3", "failed": "0"}
    client.close()


async def test_the_recorder_flushes_when_full_or_old_and_counts_requests(aredis: Any) -> None:
    store = await make_job(aredis, total=10)
    job = await store.load_job(JOB)
    assert job is not None
    now = [0.0]
    recorder = Recorder(store, job, clock=lambda: now[0], max_age_s=0.05, max_requests=3)
    recorder.add(0, [(0, DELETED), (1, DELETED)], request=True)
    recorder.add(0, [(2, FAILED)], request=True, failed=True)
    assert not recorder.due()
    assert await aredis.hgetall(keys.counts(JOB)) == {}
    now[0] = 0.06
    assert recorder.due()
    recorded = await recorder.flush()
    assert recorded is not None
    assert (recorded.added, recorded.requests, recorded.failed_requests) == (3, 2, 1)
    assert await recorder.flush() is None
    for ref in range(3, 6):
        recorder.add(0, [(ref, DELETED)], request=True)
    assert recorder.due()  # three requests held


async def test_a_result_whose_message_has_newlines_and_spaces_is_kept_as_it_came(
    aredis: Any,
) -> None:
    """A flush's entries travel as lines of one text: a message's own newlines stay in it."""
    odd = RowResult(RowStatus.FAILED, 400, "IMS.0001", "bad\nrequest: a b\r\n  c é", 1, None, 5)
    store = await make_job(aredis, total=3)
    recorded = await store.record_entries(
        JOB, [Entry(0, (0,), odd), Entry(1, (1, 2), DELETED)], requests=2, failed=1
    )
    assert (recorded.added, recorded.done, recorded.failed_requests) == (3, 3, 1)
    assert await store.chunk_results(JOB, 0) == {0: odd}
    assert await store.chunk_results(JOB, 1) == {1: DELETED, 2: DELETED}
    assert await aredis.lrange(keys.chunk_results(JOB, 0), 0, -1) == [f"0 {odd.to_json()}"]


async def test_final_refs_reads_the_bits_near_or_far_apart_and_past_the_bitmap(
    aredis: Any,
) -> None:
    """Rows close together are read in one span of the bitmap, rows far apart bit by bit:
    the same answer either way, and a bit past the bitmap's end is clear."""
    store = await make_job(aredis, total=10)
    assert await store.final_refs(JOB, [0, 5]) == set()
    final = {0, 7, 8, 9, 15, 16, 1_000_000}
    for ref in final:
        await aredis.setbit(keys.final(JOB), ref, 1)
    near = list(range(40))
    assert await store.final_refs(JOB, near) == final & set(near)
    far = [*near, 1_000_000, 2_000_000]
    assert await store.final_refs(JOB, far) == final


class DroppingStore:
    """A store whose write waits for ``release``, then finds Redis gone."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def record_entries(self, *_args: Any, **_kwargs: Any) -> None:
        await self.release.wait()
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:9. Refused.")


async def test_a_flush_failing_after_its_chunk_was_cancelled_is_one_warning_naming_redis() -> None:
    """The write goes on when its chunk is cancelled (a batch failed, Redis dropped); its
    failure then is logged once, not left to asyncio's "Task exception was never retrieved"."""
    store = DroppingStore()
    job = Job(JOB, JobState.RUNNING, total=1, chunks=1, options=JobOptions())
    recorder = Recorder(store, job)  # type: ignore[arg-type]
    recorder.add(0, [(0, DELETED)], request=True)
    loop = asyncio.get_running_loop()
    unretrieved: list[str] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context["message"]))
    try:
        with structlog.testing.capture_logs() as logs:
            flushing = asyncio.create_task(recorder.flush())
            await asyncio.sleep(0)
            flushing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await flushing
            store.release.set()
            for _turn in range(5):
                await asyncio.sleep(0)
            gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert unretrieved == []
    assert logs == [
        {
            "event": "redis.write_failed",
            "write": "results",
            "error": "Error 111 connecting to 127.0.0.1:9. Refused.",
            "log_level": "warning",
        }
    ]
