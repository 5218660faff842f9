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
