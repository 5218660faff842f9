"""Retention on a real Redis server: which keys get a TTL, when, and when they lose it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click
import pytest
import redis

from producer.collect import collect
from producer.control import retry_job
from producer.retention import forget_job, parse_keep, record_keep
from producer.submit import create_job
from tests.helpers import TEST_PROJECT, images, write
from worker import keys, retention
from worker.jobs import JobOptions, RowResult
from worker.model import RowStatus
from worker.retention import apply_retention
from worker.store import ResultStore


@pytest.fixture(params=[1000, 2], ids=["one-call", "two-keys-a-call"], autouse=True)
def keys_per_call(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test twice: the job's keys in one script call, and spread over several."""
    monkeypatch.setattr(retention, "KEYS_PER_CALL", request.param)


@pytest.fixture
def client(aredis: Any) -> Any:
    """A blocking client on the same flushed database as ``aredis``."""
    pool = aredis.connection_pool.connection_kwargs
    sync = redis.Redis(host=pool["host"], port=pool["port"], db=pool["db"], decode_responses=True)
    yield sync
    sync.close()


def make_job(client: Any, tmp_path: Path, *, keep_ms: int, rows: int = 3) -> str:
    """A job of ``rows`` rows written the way submit writes it, its resume key included."""
    csv_path = write(
        tmp_path / "job.csv",
        ["image_id", "key", "value"],
        [[image, "env", "prod"] for image in images(rows)],
    )
    collection = collect([str(csv_path)], default_project_id=TEST_PROJECT, default_region="r")
    job_id, _ = create_job(client, collection, options=JobOptions(), max_tags=20, job_id="j1")
    client.set(keys.resume("run-key"), job_id)
    record_keep(client, job_id, keep_ms=keep_ms, resume_key=keys.resume("run-key"))
    return job_id


async def finish(aredis: Any, job_id: str, rows: int, status: RowStatus) -> None:
    store = ResultStore(aredis)
    await store.record(job_id, [(ref, RowResult(status)) for ref in range(rows)])


def job_ttls(client: Any, job_id: str) -> dict[str, int]:
    names = [str(k) for k in client.scan_iter(match=f"*{job_id}*")] + [keys.resume("run-key")]
    return {name: client.pttl(name) for name in names if client.exists(name)}


async def test_a_finished_job_s_keys_expire_keep_after_its_end(
    aredis: Any, client: Any, tmp_path: Path
) -> None:
    job_id = make_job(client, tmp_path, keep_ms=60_000)
    assert apply_retention(client, job_id) == 0  # queued: nothing expires
    assert set(job_ttls(client, job_id).values()) == {-1}
    await finish(aredis, job_id, 3, RowStatus.DELETED)
    at = apply_retention(client, job_id)
    finished = int(client.hget(keys.job(job_id), "finished_at"))
    assert at == finished + 60_000
    assert apply_retention(client, job_id) == at  # applying it again changes nothing
    ttls = job_ttls(client, job_id)
    assert keys.chunk(job_id, 0) in ttls
    assert keys.resume("run-key") in ttls
    assert all(0 < ttl <= 60_000 for ttl in ttls.values()), ttls
    assert client.hget(keys.job(job_id), "expires_at") == str(at)


async def test_keep_zero_and_jobs_from_before_retention_are_kept_forever(
    aredis: Any, client: Any, tmp_path: Path
) -> None:
    job_id = make_job(client, tmp_path, keep_ms=0)
    await finish(aredis, job_id, 3, RowStatus.DELETED)
    assert apply_retention(client, job_id) == 0
    client.hdel(keys.job(job_id), "keep_ms")  # as written before retention existed
    assert apply_retention(client, job_id) == 0
    assert set(job_ttls(client, job_id).values()) == {-1}


async def test_retry_takes_the_ttls_off_and_a_newer_job_keeps_its_resume_key(
    aredis: Any, client: Any, tmp_path: Path
) -> None:
    job_id = make_job(client, tmp_path, keep_ms=60_000)
    await finish(aredis, job_id, 3, RowStatus.FAILED)
    apply_retention(client, job_id)
    assert retry_job(client, job_id, {"failed"}) == 3
    assert set(job_ttls(client, job_id).values()) == {-1}
    assert client.hget(keys.job(job_id), "expires_at") is None
    await finish(aredis, job_id, 3, RowStatus.DELETED)
    client.set(keys.resume("run-key"), "a-newer-job")  # run --new made another job
    apply_retention(client, job_id)
    assert client.pttl(keys.resume("run-key")) == -1
    assert forget_job(client, job_id) > 0
    assert client.get(keys.resume("run-key")) == "a-newer-job"
    assert [k for k in client.scan_iter(match=f"*{job_id}*")] == []


async def test_a_keep_already_over_deletes_the_job_at_once(
    aredis: Any, client: Any, tmp_path: Path
) -> None:
    job_id = make_job(client, tmp_path, keep_ms=1)
    await finish(aredis, job_id, 3, RowStatus.DELETED)
    await asyncio.sleep(0.01)
    apply_retention(client, job_id)
    assert [k for k in client.scan_iter(match=f"*{job_id}*")] == []
    assert client.exists(keys.resume("run-key")) == 0


@pytest.mark.parametrize(
    ("text", "ms"), [("0", 0), ("2s", 2000), ("90m", 5_400_000), ("30d", 2_592_000_000)]
)
def test_keep_is_a_duration_with_a_unit(text: str, ms: int) -> None:
    assert parse_keep(text) == ms


@pytest.mark.parametrize("text", ["30", "-1d", "3 days", ""])
def test_a_keep_without_a_unit_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(click.BadParameter, match="a number and a unit"):
        parse_keep(text)
