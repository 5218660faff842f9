"""The command line's job store against a real Redis: what it writes is what workers read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from producer.store import JobStore
from worker import keys
from worker.jobs import JobState
from worker.keys import JobField
from worker.lua.leases import ACQUIRE_LEASE

JOB = "storejob"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database of this module's own, flushed before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/12"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def test_stale_leases_are_released_as_their_owners_would_and_not_marked_done(
    client: redis.Redis,
) -> None:
    """A held lease and one the reaper took back (owner "") are both dropped; the chunks are
    not done, and another job's lease stays."""
    acquire = client.register_script(ACQUIRE_LEASE)
    for job_id, number, owner in ((JOB, 0, "w1"), (JOB, 1, "w2"), ("other", 0, "w3")):
        member = keys.lease_member(job_id, number)
        lease_keys = [keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)]
        assert acquire(keys=lease_keys, args=[member, owner, 60_000, number]) == "ok"
    client.hset(keys.LEASE_OWNERS, keys.lease_member(JOB, 1), "")  # reaped

    JobStore(client).release_leases(JOB, [0, 1, 2])

    assert client.zrange(keys.LEASES, 0, -1) == [keys.lease_member("other", 0)]
    assert client.hgetall(keys.LEASE_OWNERS) == {keys.lease_member("other", 0): "w3"}
    assert not client.exists(keys.done_chunks(JOB))


def test_stop_job_stops_a_running_job_once_with_the_first_reason(client: redis.Redis) -> None:
    store = JobStore(client)
    store.write_record(JOB, {JobField.STATE: JobState.RUNNING.value}, created_at_ms=1)
    assert store.stop_job(JOB, JobState.CANCELLED, "cancelled by user")
    assert not store.stop_job(JOB, JobState.ABORTED, "too late")
    record = store.read_record(JOB)
    assert (record[JobField.STATE], record[JobField.REASON]) == ("cancelled", "cancelled by user")
    assert JobField.FINISHED_AT in record
    assert store.latest_job_id() == JOB


def test_a_submission_key_finds_its_job_only_once_the_record_is_whole(
    client: redis.Redis,
) -> None:
    store = JobStore(client)
    assert store.claim_job_id("key", "first") == "first"
    assert store.claim_job_id("key", "second") == "first"  # a killed submission's id is kept
    assert store.submitted_job("key") is None  # no record yet
    store.write_record("first", {JobField.CHUNKS: 3, JobField.NEXT_CHUNK: 3}, created_at_ms=1)
    assert store.submitted_job("key") == "first"
    store.point_resume_key("key", "newer")
    assert store.submitted_job("key") is None


def test_dispatch_counts_and_pending_chunks_follow_the_record(client: redis.Redis) -> None:
    store = JobStore(client)
    store.write_record(JOB, {JobField.NEXT_CHUNK: 3, JobField.DISPATCHED: 0}, created_at_ms=1)
    store.mark_dispatched(JOB, 2)
    store.add_chunks(JOB, 2)
    client.sadd(keys.done_chunks(JOB), 0, 3)
    assert store.dispatched(JOB) == (2, 5)
    assert store.next_chunk(JOB) == 5
    assert store.pending_chunks(JOB) == [1, 2, 4]


def test_forget_is_refused_while_a_worker_holds_a_live_lease_on_a_chunk(
    client: redis.Redis,
) -> None:
    """A cancelled job whose chunk is still leased is kept whole; a lease past its expiry (a
    dead worker's) or another job's does not hold it; once let go, every key goes."""
    from producer.errors import ForgetRefused
    from producer.retention import forget_job

    client.hset(keys.job(JOB), mapping={JobField.STATE: "cancelled", JobField.NEXT_CHUNK: 2})
    client.rpush(keys.chunk_results(JOB, 0), "1 {}")
    client.zadd(keys.LEASES, {keys.lease_member(JOB, 0): client.time()[0] * 1000 + 60_000})
    client.zadd(keys.LEASES, {keys.lease_member(JOB, 1): 1, keys.lease_member("other", 0): 2**40})
    with pytest.raises(ForgetRefused, match=f"job {JOB} is cancelled but 1 of its chunk"):
        forget_job(client, JOB)
    assert client.exists(keys.job(JOB), keys.chunk_results(JOB, 0)) == 2

    client.zrem(keys.LEASES, keys.lease_member(JOB, 0))
    assert forget_job(client, JOB) == 2
    assert list(client.scan_iter(match=f"*{JOB}*")) == []


def _no_state(client: redis.Redis) -> None:
    """What a worker once left of a forgotten job: counters only, and its index entry."""
    client.hset(keys.job(JOB), mapping={JobField.REQUESTS: 3, JobField.FAILED_REQUESTS: 1})
    client.zadd(keys.JOBS, {JOB: 1})


@pytest.mark.parametrize("read", ["read_status", "read_job"])  # status; report, retry, undo
def test_a_record_without_a_state_is_no_job(client: redis.Redis, read: str) -> None:
    from producer import status
    from producer.errors import JobNotFound

    _no_state(client)
    with pytest.raises(JobNotFound, match=f"no job '{JOB}' in this Redis"):
        getattr(status, read)(client, JOB)


def test_jobs_leaves_out_a_record_without_a_state(client: redis.Redis) -> None:
    from producer.jobs_list import iter_jobs

    _no_state(client)
    assert list(iter_jobs(client)) == []
