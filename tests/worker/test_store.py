"""Results, counters and leases on a real Redis server."""

from __future__ import annotations

from typing import Any

import pytest

from worker import keys
from worker.jobs import JobOptions, JobState, RowResult
from worker.model import RowStatus
from worker.reaper import reap_once
from worker.store import ResultStore
from worker.store.rates import RateMemory

JOB = "job1"


async def make_job(aredis: Any, total: int) -> ResultStore:
    await aredis.hset(
        keys.job(JOB),
        mapping={"state": "queued", "total": total, "chunks": 1, "options": JobOptions().to_json()},
    )
    return ResultStore(aredis)


async def test_a_row_is_recorded_and_counted_once_however_often_it_is_sent(aredis: Any) -> None:
    store = await make_job(aredis, total=3)
    first = await store.record(
        JOB, [(1, RowResult(RowStatus.DELETED)), (2, RowResult(RowStatus.FAILED))]
    )
    again = await store.record(
        JOB, [(1, RowResult(RowStatus.NOT_FOUND)), (2, RowResult(RowStatus.DELETED))]
    )
    assert (first.added, first.done, again.added, again.done) == (2, 2, 0, 2)
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "1", "failed": "1"}
    assert (await store.chunk_results(JOB, 0))[1].status is RowStatus.DELETED


@pytest.mark.parametrize(
    ("statuses", "state"),
    [
        ([RowStatus.DELETED, RowStatus.NOT_FOUND], JobState.COMPLETED),
        ([RowStatus.DELETED, RowStatus.FORBIDDEN], JobState.COMPLETED_WITH_FAILURES),
    ],
)
async def test_the_last_row_finishes_the_job(
    aredis: Any, statuses: list[RowStatus], state: JobState
) -> None:
    store = await make_job(aredis, total=2)
    first = await store.record(JOB, [(1, RowResult(statuses[0]))])
    last = await store.record(JOB, [(2, RowResult(statuses[1]))])
    assert (first.finished, last.finished) == (None, state)
    assert await store.job_state(JOB) is state
    assert await aredis.hget(keys.job(JOB), "finished_at")


async def test_requests_and_failures_are_counted_for_the_breaker(aredis: Any) -> None:
    store = await make_job(aredis, total=10)
    await store.record(JOB, [(1, RowResult(RowStatus.DELETED))], request=True)
    recorded = await store.record(
        JOB, [(2, RowResult(RowStatus.FORBIDDEN))], request=True, failed=True
    )
    assert (recorded.requests, recorded.failed_requests) == (2, 1)


async def test_a_cancelled_job_is_not_completed_by_its_last_rows(aredis: Any) -> None:
    store = await make_job(aredis, total=1)
    assert await store.stop_job(JOB, JobState.CANCELLED, "by test")
    assert not await store.stop_job(JOB, JobState.ABORTED, "too late")
    recorded = await store.record(JOB, [(1, RowResult(RowStatus.CANCELLED))])
    assert recorded.finished is None
    assert await store.job_state(JOB) is JobState.CANCELLED
    assert await aredis.hget(keys.job(JOB), "reason") == "by test"


async def test_a_lease_is_exclusive_until_it_expires_or_is_released(aredis: Any) -> None:
    store = await make_job(aredis, total=1)
    assert await store.acquire_lease(JOB, 0, "a", 60_000) == "ok"
    assert await store.acquire_lease(JOB, 0, "b", 60_000) == "busy"
    assert await store.renew_lease(JOB, 0, "a", 60_000)
    assert not await store.renew_lease(JOB, 0, "b", 60_000)
    await store.release_lease(JOB, 0, "a", complete=False)
    assert await store.acquire_lease(JOB, 0, "b", 60_000) == "ok"
    await store.release_lease(JOB, 0, "b", complete=True)
    assert await store.acquire_lease(JOB, 0, "c", 60_000) == "done"


async def test_an_expired_lease_is_reaped_once_and_can_be_taken_again(
    aredis: Any, redis_url: str
) -> None:
    import redis

    store = await make_job(aredis, total=1)
    assert await store.acquire_lease(JOB, 0, "dead-worker", 1) == "ok"
    sync = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/8", decode_responses=True)
    import asyncio

    await asyncio.sleep(0.01)
    sent: list[tuple[str, int]] = []
    assert reap_once(sync, lambda job, n: sent.append((job, n))) == [f"{JOB}:0"]
    assert reap_once(sync, lambda job, n: sent.append((job, n))) == []  # in its grace period
    assert sent == [(JOB, 0)]
    assert await store.renew_lease(JOB, 0, "dead-worker", 60_000) is False  # the holder lost it
    assert await store.acquire_lease(JOB, 0, "new-worker", 60_000) == "ok"
    sync.close()


async def test_leases_of_finished_jobs_are_dropped_not_redispatched(
    aredis: Any, redis_url: str
) -> None:
    import asyncio

    import redis

    store = await make_job(aredis, total=1)
    await store.acquire_lease(JOB, 0, "w", 1)
    await aredis.hset(keys.job(JOB), "state", "completed")
    await asyncio.sleep(0.01)
    sync = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/8", decode_responses=True)
    sent: list[tuple[str, int]] = []
    reap_once(sync, lambda job, n: sent.append((job, n)))
    assert sent == []
    assert await aredis.zcard(keys.LEASES) == 0
    sync.close()


async def test_a_worker_still_holding_a_chunk_brings_back_no_part_of_a_forgotten_job(
    aredis: Any,
) -> None:
    """The record gone (``forget``, expiry), the last flush and the release write nothing of
    the job: no counters, counts, final bits, results or done chunks."""
    store = await make_job(aredis, total=2)
    assert await store.acquire_lease(JOB, 0, "w", 60_000) == "ok"
    await aredis.delete(keys.job(JOB))
    recorded = await store.record(
        JOB, [(1, RowResult(RowStatus.CANCELLED))], request=True, failed=True
    )
    await store.release_lease(JOB, 0, "w", complete=True)
    assert (recorded.added, recorded.done, recorded.requests, recorded.finished) == (0, 0, 0, None)
    assert [key async for key in aredis.scan_iter(match=f"*{JOB}*")] == []
    assert await aredis.zcard(keys.LEASES) == 0


async def test_the_best_rate_of_a_schedule_is_only_raised_and_kept_30_days(aredis: Any) -> None:
    """A lower measurement leaves the best remembered, and still keeps it 30 days more."""
    memory = RateMemory(aredis)
    assert await memory.best_rate("tagsweep:rate:x") == 0.0
    assert await memory.remember_rate("tagsweep:rate:x", 310.5) == 310.5
    assert await memory.remember_rate("tagsweep:rate:x", 120.0) == 310.5
    assert await memory.best_rate("tagsweep:rate:x") == 310.5
    assert await aredis.ttl(keys.rate_best("tagsweep:rate:x")) > 29 * 24 * 3600


async def test_leases_held_side_by_side_count_once_in_the_job_s_active_time(aredis: Any) -> None:
    """Two chunks held over the same 10 s add 10 s of work, not 20; after a minute no lease
    spanned (an interrupted run), a release adds only its own 2 s."""
    store = await make_job(aredis, total=2)
    assert await store.acquire_lease(JOB, 0, "a", 60_000) == "ok"
    assert await store.acquire_lease(JOB, 1, "b", 60_000) == "ok"
    assert await store.renew_lease(JOB, 0, "a", 60_000, worked_ms=10_000)
    assert await store.renew_lease(JOB, 1, "b", 60_000, worked_ms=10_000)
    first = int(await aredis.hget(keys.job(JOB), "active_ms"))
    assert 10_000 <= first < 10_100  # the second renewal adds only the ms between the two
    counted_to = int(await aredis.hget(keys.job(JOB), "active_at"))
    await aredis.hset(keys.job(JOB), "active_at", counted_to - 60_000)  # a minute idle
    await store.release_lease(JOB, 0, "a", complete=False, worked_ms=2_000)
    second = int(await aredis.hget(keys.job(JOB), "active_ms"))
    assert first + 2_000 <= second < first + 2_100
    await store.release_lease(JOB, 1, "b", complete=False, worked_ms=1_000)  # within those 2 s
    assert int(await aredis.hget(keys.job(JOB), "active_ms")) < second + 100
