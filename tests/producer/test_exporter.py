"""The exporter's families read straight from job records in a real Redis (the live exporter,
with workers and the simulator, is in tests/e2e/test_operations.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from producer.exporter import TagsweepCollector
from producer.store import JobStore
from worker import keys
from worker.jobs import JobOptions, JobState, Mode
from worker.keys import JobField

EXPIRES_MS = 1_900_000_000_123


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database of this module's own, flushed before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/13"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def ended_job(client: redis.Redis, job_id: str, options: JobOptions, **fields: str | int) -> None:
    """A job that ended long ago (so that it has no per-job series but its backup's)."""
    record = {
        JobField.STATE: JobState.COMPLETED.value,
        JobField.FINISHED_AT: 1,
        JobField.OPTIONS: options.to_json(),
        **fields,
    }
    JobStore(client).write_record(job_id, record, created_at_ms=1)


def backup_samples(client: redis.Redis) -> dict[str, float]:
    """The backup expiry gauge's samples by job, from one collection."""
    families = {family.name: family for family in TagsweepCollector(client).collect()}
    family = families["tagsweep_backup_expiry_timestamp_seconds"]
    return {sample.labels["job"]: sample.value for sample in family.samples}


def test_a_backup_not_undone_gives_its_expiry_in_seconds_however_long_ago_it_ended(
    client: redis.Redis,
) -> None:
    """Only a --backup delete that was not undone and will expire has the gauge: not an
    undone one, one without backup, one kept forever, nor a plan."""
    backup = JobOptions(backup=True)
    ended_job(client, "kept", backup, **{JobField.EXPIRES_AT: EXPIRES_MS})
    ended_job(
        client, "undone", backup, **{JobField.EXPIRES_AT: EXPIRES_MS, JobField.UNDONE_BY: "u1"}
    )
    ended_job(client, "plain", JobOptions(), **{JobField.EXPIRES_AT: EXPIRES_MS})
    ended_job(client, "forever", backup)
    plan = JobOptions(backup=True, mode=Mode.PLAN)
    ended_job(client, "plan", plan, **{JobField.EXPIRES_AT: EXPIRES_MS})

    assert backup_samples(client) == {"kept": EXPIRES_MS / 1000}


def test_an_expired_job_left_in_the_index_has_no_backup_gauge(client: redis.Redis) -> None:
    ended_job(client, "gone", JobOptions(backup=True), **{JobField.EXPIRES_AT: EXPIRES_MS})
    client.delete(keys.job("gone"))  # the record expired; the index keeps the id
    assert backup_samples(client) == {}
