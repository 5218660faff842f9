"""The engine in-process (no Celery): retries, caps, breakers and idempotent redelivery,
against the simulator over loopback HTTP and a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import structlog

from tests.helpers import IMAGES, JOB, TEST_PROJECT, results, setup, write_csv
from worker import keys
from worker.cloud.client import ImsClient
from worker.engine import run_chunk
from worker.formats import encode_chunk
from worker.jobs import JobState
from worker.model import ImageBatch, RowStatus, TagRows
from worker.store import ResultStore


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    rows = [{"image_id": i, "key": k, "value": "v"} for i in IMAGES for k in ("a", "b")]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


Start = Callable[..., Any]


async def test_faults_are_retried_until_every_row_is_deleted(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, fail_rates={503: 0.3, 500: 0.1}, drop_rate=0.05, seed=11)
    ctx = await setup(aredis, session, server, max_attempts=12)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert {r[0] for r in found.values()} == {"deleted"}
    assert max(r[4] for r in found.values()) > 1  # some rows needed several attempts
    assert max(r[4] for r in found.values()) <= 12
    assert await ctx.store.job_state(JOB) is JobState.COMPLETED
    assert all(server.sim.store.tags_of(TEST_PROJECT, i) == {} for i in IMAGES)


async def test_retries_stop_at_the_attempt_cap_and_rows_end_failed(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, fail_rates={503: 1.0})
    ctx = await setup(aredis, session, server, max_attempts=3, breaker_min=1000)
    await run_chunk(ctx, JOB, 0)
    found = await results(aredis)
    assert {(r[0], r[1], r[2], r[4]) for r in found.values()} == {("failed", 503, "APIGW.0613", 3)}
    assert server.sim.stats.by_status[503] == 90
    assert await ctx.store.job_state(JOB) is JobState.COMPLETED_WITH_FAILURES


async def test_429s_while_a_named_window_is_spent_use_up_no_attempts(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """10 calls per 2 s window, 30 requests, one attempt a row: every row is deleted, though
    some were answered 429 first, since a 429 that names the limit uses up no attempt and the
    workers hold back; the limit is logged once."""
    from structlog.testing import capture_logs

    from simulator.limits import RateLimit

    server = await start_sim(seed, rate_limit=RateLimit(10, 2))
    ctx = await setup(aredis, session, server, max_attempts=1, rate_per_s=100.0)
    with capture_logs() as logs:
        assert await run_chunk(ctx, JOB, 0) == "worked"
    found = await results(aredis)
    assert {r[0] for r in found.values()} == {"deleted"}
    assert server.sim.stats.by_status[429] >= 1
    assert max(r[4] for r in found.values()) >= 2  # calls made, the free ones included
    learned = [e for e in logs if e["event"] == "ratelimit.learned"]
    assert [(e["limit"], e["window_s"]) for e in learned] == [(10, 2.0)]
    # At most the calls in flight when the window was spent, and a probe every 0.1 s of it.
    assert server.sim.stats.by_status[429] <= 16 + 20


async def test_a_signature_failure_aborts_the_job_after_one_call(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, sk="wrong-sk")
    await run_chunk(ctx, JOB, 0)  # 16 calls could be in flight: the first goes alone
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state is JobState.ABORTED
    assert "signature" in job.reason
    assert server.sim.stats.by_status[401] == 1  # far from the five that lock the AK
    found = await results(aredis)
    assert sorted(r[0] for r in found.values()).count("cancelled") == 58
    assert sorted(r[0] for r in found.values()).count("unauthorized") == 2


async def test_an_unknown_ak_aborts_the_job_after_one_call_and_resume_resends_its_rows(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """An unknown AK, like a wrong SK, aborts at the first refused call; the job names the
    rows that call ended (``unauthorized``) as the ones a resume sends again."""
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, ak="NOSUCHAK4711")
    await run_chunk(ctx, JOB, 0)
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state is JobState.ABORTED
    assert job.reason.startswith("AK/SK refused (APIGW.0301: ")
    assert "Get secretKey failed,ak:***,err:ak not exist" in job.reason
    assert "NOSUCHAK4711" not in job.reason
    assert job.resend is RowStatus.UNAUTHORIZED
    assert sum(server.sim.stats.by_status.values()) == 1
    statuses = sorted(r[0] for r in (await results(aredis)).values())
    assert statuses.count("unauthorized") == 2
    assert statuses.count("cancelled") == 58


async def test_a_token_refused_on_the_first_call_aborts_the_job_at_once(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """Credentials never accepted are refused to every call: one call, not a hundred."""
    from worker.cloud.auth import TokenAuth
    from worker.cloud.credentials import TokenCredentials

    server = await start_sim(seed)
    ctx = await setup(aredis, session, server)
    auth = TokenAuth(TokenCredentials("MII-not-a-token"), session=session, iam_endpoint=server.url)
    client = ImsClient(session, endpoint=server.url, auth=auth)
    ctx.client_for = lambda _: client
    await run_chunk(ctx, JOB, 0)
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state is JobState.ABORTED
    assert job.reason.startswith("credentials refused (APIGW.0301: ")
    assert job.resend is RowStatus.UNAUTHORIZED
    assert sum(server.sim.stats.by_status.values()) == 1


async def test_a_wrong_iam_password_aborts_the_job_without_calling_ims(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    from simulator.config import SimUser
    from worker.cloud.auth import TokenAuth
    from worker.cloud.credentials import PasswordCredentials

    server = await start_sim(seed, users=(SimUser("u", "right", "d"),))
    ctx = await setup(aredis, session, server)
    auth = TokenAuth(
        PasswordCredentials("u", "pw-NOT-right-42", "d"), session=session, iam_endpoint=server.url
    )
    client = ImsClient(session, endpoint=server.url, auth=auth)
    ctx.client_for = lambda _: client
    await run_chunk(ctx, JOB, 0)
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state is JobState.ABORTED
    assert job.reason.startswith("no token: IAM refused a token")
    assert "pw-NOT-right-42" not in job.reason
    assert sum(server.sim.stats.by_status.values()) == 0


async def test_too_many_failed_requests_trip_the_breaker(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, fail_rates={403: 1.0})
    ctx = await setup(aredis, session, server, breaker_min=10, breaker_ratio=0.5)
    ctx.concurrency = 1
    await run_chunk(ctx, JOB, 0)
    job = await ctx.store.load_job(JOB)
    assert job is not None
    assert job.state is JobState.ABORTED
    assert "10 of 10 requests failed" in job.reason
    assert server.sim.stats.by_status[403] == 10
    assert len(await results(aredis)) == 60


async def test_a_chunk_delivered_again_calls_nothing_for_final_rows(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server)
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert await run_chunk(ctx, JOB, 0) == "done"
    await aredis.delete(keys.done_chunks(JOB))  # as if the worker died before marking it done
    calls = sum(server.sim.stats.by_status.values())
    assert await run_chunk(ctx, JOB, 0) == "worked"
    assert sum(server.sim.stats.by_status.values()) == calls
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "60"}


async def test_a_cancelled_job_records_its_rows_cancelled_without_calls(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server)
    await ctx.store.stop_job(JOB, JobState.CANCELLED, "test")
    await run_chunk(ctx, JOB, 0)
    assert sum(server.sim.stats.by_status.values()) == 0
    assert await aredis.hgetall(keys.counts(JOB)) == {"cancelled": "60"}


def job_lines(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if str(e["event"]).startswith(("batch.", "job.", "ratelimit."))]


async def test_success_is_debug_a_row_that_ended_badly_warning_and_job_finished_last(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """A filter on level >= warning lists every request whose rows did not end well; retries
    say what happened to the attempt and the next delay, not a final status."""
    server = await start_sim(seed, fail_rates={503: 0.5}, seed=3)
    ctx = await setup(aredis, session, server, max_attempts=2, breaker_min=1000)
    with structlog.testing.capture_logs() as captured:
        await run_chunk(ctx, JOB, 0)
    lines = job_lines(captured)
    done = [e for e in lines if e["event"] == "batch.done"]
    assert {(e["status"], e["log_level"]) for e in done} == {
        ("deleted", "debug"),
        ("failed", "warning"),
    }
    failed_rows = [r for r in (await results(aredis)).values() if r[0] == "failed"]
    assert sum(e["tags"] for e in done if e["log_level"] == "warning") == len(failed_rows)
    retries = [e for e in lines if e["event"] == "batch.retry"]
    assert retries
    for retry in retries:
        assert "status" not in retry
        assert (retry["outcome"], retry["http_status"], retry["log_level"]) == (
            "server_error",
            503,
            "info",
        )
        assert retry["delay_s"] >= 0
    assert lines[-1]["event"] == "job.finished"
    assert lines[-1]["state"] == "completed_with_failures"
    # (Its totals, and the job.progress lines that add up to them: test_engine_logs.py.)


async def test_an_abort_is_an_error_and_the_rows_it_stopped_a_warning(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, sk="wrong-sk")
    with structlog.testing.capture_logs() as captured:
        await run_chunk(ctx, JOB, 0)
    levels = {e["event"]: e["log_level"] for e in captured}
    assert levels["job.aborted"] == "error"
    assert levels["job.cancelled"] == "warning"
    progress = [e["rows"] for e in captured if e["event"] == "job.progress"]
    assert sum(rows.get("cancelled", 0) for rows in progress) == 58


async def test_the_rate_is_logged_when_it_changes_not_at_every_chunk(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """Chunks worked at the ceiling from the start write no ``ratelimit.adjusted`` line."""
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server)
    second = [
        ImageBatch("r", TEST_PROJECT, image, (TagRows("a", "v", (60 + n,)),))
        for n, image in enumerate(IMAGES)
    ]
    await aredis.hset(keys.job(JOB), mapping={"total": 90, "chunks": 2})
    await aredis.set(keys.chunk(JOB, 1), encode_chunk(second))
    with structlog.testing.capture_logs() as captured:
        assert await run_chunk(ctx, JOB, 0) == "worked"
        assert await run_chunk(ctx, JOB, 1) == "worked"
    assert [e for e in captured if e["event"] == "ratelimit.adjusted"] == []
    assert [e["event"] for e in job_lines(captured)][-1] == "job.finished"


class DiesBeforeFlushing(ResultStore):
    """A worker that dies after its calls, before their results reach Redis."""

    async def record_entries(self, *args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("worker killed before the flush")


@pytest.mark.parametrize("backup", [False, True])
async def test_rows_of_a_worker_killed_before_its_flush_are_worked_again_once(
    aredis: Any,
    session: aiohttp.ClientSession,
    start_sim: Start,
    seed: Path,
    backup: bool,
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, backup=backup)
    good_store = ctx.store
    ctx.store = DiesBeforeFlushing(aredis)
    assert await run_chunk(ctx, JOB, 0) == "redis_lost"  # a warning, the lease kept
    sent = server.sim.stats.by_status[204]
    assert sent >= 1
    assert await aredis.hgetall(keys.counts(JOB)) == {}
    ctx.store = good_store
    # The dead worker's lease expires; the reaper takes it back (owner "") and re-queues it.
    await aredis.hset(keys.LEASE_OWNERS, keys.lease_member(JOB, 0), "")
    assert await run_chunk(ctx, JOB, 0) == "worked"
    # Nothing was final: every image is worked again (a delete is idempotent). (Calls in
    # flight when the first run died may reach the simulator after ``sent`` was read.)
    assert server.sim.stats.by_status[204] >= sent + 30
    assert await aredis.hgetall(keys.counts(JOB)) == {"deleted": "60"}
    found = await results(aredis)
    assert len(found) == 60
    entries = await aredis.lrange(keys.chunk_results(JOB, 0), 0, -1)
    named = [ref for entry in entries for ref in entry.partition(" ")[0].split(",")]
    assert sorted(named, key=int) == [str(n) for n in range(60)]  # one entry per row
    if backup:  # the first reads' values stand, not the second reads' (nothing left)
        assert set((await good_store.chunk_observed(JOB, 0)).values()) == {"v"}


async def test_a_result_reaches_redis_while_the_chunk_is_still_sending(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """Held results are flushed every few tens of milliseconds, not only when the next result
    comes: at 2 calls/s the first image's rows are counted before the second call is sent."""
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server, rate_per_s=2.0)
    task = asyncio.create_task(run_chunk(ctx, JOB, 0))
    seen: list[tuple[int, int]] = []
    while not task.done() and server.sim.stats.by_status[204] < 2:
        counted = int(await aredis.hget(keys.counts(JOB), "deleted") or 0)
        seen.append((server.sim.stats.by_status[204], counted))
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert (1, 2) in seen  # one call answered, its two rows recorded, the next not yet sent
