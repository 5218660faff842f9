"""A job written by an earlier version (results and observations in hashes) is converted once
and reads back row for row as it did (real Redis)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from producer.report import iter_report
from producer.status import read_job
from producer.store import JobStore
from producer.store.upgrade import LAYOUT
from producer.submit import write_record
from worker import keys
from worker.jobs import JobOptions, JobState, RowResult
from worker.model import RowStatus

JOB = "oldjob"
IMG = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(4)]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database of this module's own, flushed before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/10"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def old_job(client: redis.Redis) -> dict[int, RowResult]:
    """Two chunks in plain JSON, results and observations per row in hashes, as before."""
    chunks = [
        [
            ["r", "p", IMG[0], [["a", "1", [0, 4]], ["b", "2", [1]]]],
            ["r", "p", IMG[1], [["a", "1", [2]]]],
        ],
        [["r", "p", IMG[2], [["a", "1", [3]]]], ["r", "p", IMG[3], [["c", "3", [5]]]]],
    ]
    for number, chunk in enumerate(chunks):
        client.set(keys.chunk(JOB, number), json.dumps(chunk))
    options = JobOptions(backup=True)
    write_record(client, JOB, JobState.COMPLETED_WITH_FAILURES, 7, 2, options, [], "", 1)
    client.hdel(keys.job(JOB), "layout")
    results = {
        0: RowResult(RowStatus.DELETED, 204, None, None, 1, "req-a", 10),
        4: RowResult(RowStatus.DELETED, 204, None, None, 1, "req-a", 10),
        1: RowResult(RowStatus.DELETED, 204, None, None, 1, "req-a", 10),
        2: RowResult(RowStatus.FAILED, 503, "X", "busy", 8, "req-b", 11),
        3: RowResult(RowStatus.NOT_FOUND, 404, "IMG.0027", "gone", 1, "req-c", 12),
    }  # row 5: pending (a retry made it so)
    for ref, result in results.items():
        client.hset(keys.results(JOB), str(ref), result.to_json())
    invalid = RowResult(RowStatus.INVALID, error_message="bad id", finished_at_ms=9)
    client.hset(keys.results(JOB), "i0", invalid.to_json())
    client.rpush(keys.invalid_rows(JOB), json.dumps(["i0", "x", "k", "v", "p", "r"]))
    observed = {"0": '"1"', "1": "null", "2": '"ü"', "3": '"1"'}
    client.hset(keys.observed(JOB), mapping=observed)
    client.hset(keys.counts(JOB), mapping={"deleted": 3, "failed": 1, "not_found": 1, "invalid": 1})
    return results


def test_an_older_job_is_converted_once_and_reads_back_as_before(client: redis.Redis) -> None:
    results = old_job(client)
    job = read_job(client, JOB)
    assert client.hget(keys.job(JOB), "layout") == LAYOUT
    assert client.hkeys(keys.results(JOB)) == ["i0"]
    assert client.type(keys.observed(JOB)) == "string"
    assert JobStore(client).final_refs(JOB, range(6)) == set(results)
    assert JobStore(client).chunk_results(JOB, 0) == {r: results[r] for r in (0, 1, 2, 4)}
    rows = list(iter_report(client, job))
    assert [(r["image_id"], r["key"], r["status"]) for r in rows] == [
        (IMG[0], "a", "deleted"),
        (IMG[0], "a", "deleted"),
        (IMG[0], "b", "deleted"),
        (IMG[1], "a", "failed"),
        (IMG[2], "a", "not_found"),
        (IMG[3], "c", "pending"),
        ("x", "k", "invalid"),
    ]
    assert [(r["previous_value"], r["was_present"]) for r in rows] == [
        ("1", True),
        ("1", True),
        (None, False),
        ("ü", True),
        ("1", True),
        (None, None),
        (None, None),
    ]
    assert (rows[3]["error_message"], rows[3]["attempts"]) == ("busy", 8)
    # Converting again (as after a crash before the mark) changes nothing a reader sees.
    client.hdel(keys.job(JOB), "layout")
    assert list(iter_report(client, read_job(client, JOB))) == rows
    assert client.hgetall(keys.counts(JOB)) == {
        "deleted": "3",
        "failed": "1",
        "not_found": "1",
        "invalid": "1",
    }
