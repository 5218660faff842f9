"""The engine's log lines add up (DESIGN: Logs): ``job.progress`` summed over a process's lines
is what it recorded, ``job.finished`` carries the job's totals from Redis, one
``job.cancelled`` per job and process, a failed request names its keys and error, and no
spurious ``recovered`` follows a limit learnt. In-process engine, real Redis, the simulator
over loopback HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from tests.helpers import IMAGES, JOB, TEST_PROJECT, setup, write_csv
from worker import keys
from worker.engine import run_chunk
from worker.formats import encode_chunk
from worker.jobs import JobState
from worker.limits.limiter import Throttling
from worker.limits.slots import Permit
from worker.model import CloudLimit, ImageBatch, Scope, TagRows

Start = Callable[..., Any]


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    rows = [{"image_id": i, "key": k, "value": "v"} for i in IMAGES for k in ("a", "b")]
    return write_csv(tmp_path / "seed.csv", rows, ["image_id", "key", "value"])


async def add_second_chunk(aredis: Any) -> None:
    """A second chunk of the job (tag "a" of each image again, as rows 60..89)."""
    second = [
        ImageBatch("r", TEST_PROJECT, image, (TagRows("a", "v", (60 + n,)),))
        for n, image in enumerate(IMAGES)
    ]
    await aredis.hset(keys.job(JOB), mapping={"total": 90, "chunks": 2})
    await aredis.set(keys.chunk(JOB, 1), encode_chunk(second))


def summed(lines: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """Rows by status, and requests/calls/throttled/retries, over ``job.progress`` lines."""
    rows: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for line in lines:
        if line["event"] == "job.progress":
            rows.update(line["rows"])
            calls.update({name: line[name] for name in ("requests", "throttled", "retries")})
    return rows, calls


async def test_progress_lines_add_up_to_the_job_and_job_finished_carries_its_totals(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    """Two chunks, well under the 10 s period, with 503s and 429s: the process's last
    interval is logged when it lets go of each chunk, so the lines sum to the job's counts."""
    server = await start_sim(seed, fail_rates={503: 0.3, 429: 0.03}, seed=7)
    ctx = await setup(aredis, session, server, max_attempts=2, breaker_min=1000)
    await add_second_chunk(aredis)
    with structlog.testing.capture_logs() as captured:
        assert await run_chunk(ctx, JOB, 0) == "worked"
        assert await run_chunk(ctx, JOB, 1) == "worked"
    counts = {k: int(v) for k, v in (await aredis.hgetall(keys.counts(JOB))).items()}
    record = await aredis.hgetall(keys.job(JOB))
    totals = {name: int(record[name]) for name in ("requests", "throttled", "retries")}
    assert sum(counts.values()) == 90
    assert totals["retries"] > 0
    assert totals["throttled"] > 0
    assert "failed" in counts  # a fault that outlasted its attempts
    rows, calls = summed(captured)
    assert rows == counts
    assert calls == totals
    [finished] = [line for line in captured if line["event"] == "job.finished"]
    assert finished["state"] == record["state"]
    assert finished["rows"] == counts
    assert {name: finished[name] for name in totals} == totals
    assert finished["calls"] == int(record["calls"])
    assert isinstance(finished["elapsed_s"], float)
    assert captured[-1]["event"] == "job.finished"


async def test_a_cancel_is_logged_once_per_job_and_process_its_rows_in_progress(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed)
    ctx = await setup(aredis, session, server)
    await add_second_chunk(aredis)
    await ctx.store.stop_job(JOB, JobState.CANCELLED, "cancelled by ops")
    with structlog.testing.capture_logs() as captured:
        await run_chunk(ctx, JOB, 0)
        await run_chunk(ctx, JOB, 1)
    cancelled = [e for e in captured if e["event"] == "job.cancelled"]
    assert [(e["log_level"], e["state"], e["reason"]) for e in cancelled] == [
        ("warning", "cancelled", "cancelled by ops")
    ]
    assert summed(captured)[0] == {"cancelled": 90}


async def test_a_failed_request_s_line_names_its_keys_and_the_error_message(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, fail_rates={503: 1.0})
    ctx = await setup(aredis, session, server, max_attempts=2, breaker_min=1000)
    with structlog.testing.capture_logs() as captured:
        await run_chunk(ctx, JOB, 0)
    failed = [e for e in captured if e["event"] == "batch.done"]
    assert len(failed) == 30
    for line in failed:
        assert (line["log_level"], line["status"], line["keys"]) == (
            "warning",
            "failed",
            ["a", "b"],
        )
        assert line["error_message"]
    retries = [e for e in captured if e["event"] == "batch.retry"]
    assert retries
    assert all(e["keys"] == ["a", "b"] and e["error_message"] for e in retries)


class StalePermits:
    """A limiter whose permits carry the rate from before a 429 taught the cloud's limit, as
    the permits of calls in flight at that moment do; its own view is the new rate."""

    key = "stale"
    scope = Scope.USER

    def __init__(self, rate_per_s: float) -> None:
        self.effective_rate_per_s = rate_per_s
        self.limit: CloudLimit | None = None
        self._permit_rate = rate_per_s

    async def acquire(self, ceiling_per_s: float, **_: Any) -> Permit:
        return Permit(self._permit_rate, 0.0)

    def accepted(self) -> None:
        return None

    async def throttled(
        self, permit: Any = None, limit: Any = None, scope: Any = None
    ) -> Throttling:
        learned = None if self.limit else CloudLimit(5, 1.0)
        self.limit = self.limit or learned
        self.effective_rate_per_s = 4.75
        return Throttling(4.75, False, learned, False, False, True)


async def test_no_recovered_line_follows_a_limit_learnt_from_calls_already_in_flight(
    aredis: Any, session: aiohttp.ClientSession, start_sim: Start, seed: Path
) -> None:
    server = await start_sim(seed, fail_rates={429: 0.2}, seed=3)
    ctx = await setup(aredis, session, server, rate_per_s=50.0)
    limiter = StalePermits(50.0)
    ctx.limiter_for = lambda *_: limiter  # type: ignore[assignment,return-value]
    with structlog.testing.capture_logs() as captured:
        await run_chunk(ctx, JOB, 0)
    events = [(e["event"], e.get("cause")) for e in captured if e["event"].startswith("rate")]
    assert ("ratelimit.learned", None) in events
    assert ("ratelimit.adjusted", "recovered") not in events


async def test_job_finished_says_the_time_worked_as_status_does_not_a_pause(aredis: Any) -> None:
    """A job interrupted for a minute and resumed: ``job.finished``'s ``elapsed_s`` is the
    time its rows were worked (the leases' active time and the time held since it was last
    counted), as ``status`` says it, not the wall time from its start that holds the pause."""
    from worker.store.jobs import JobRecords

    record = {
        keys.JobField.STATE: "completed",
        keys.JobField.TOTAL: "10",
        keys.JobField.CHUNKS: "1",
        keys.JobField.STARTED_AT: "1000000",
        keys.JobField.FINISHED_AT: "1081000",  # 81 s of wall time, 60 of them a pause
        keys.JobField.ACTIVE_MS: "19000",
        keys.JobField.ACTIVE_AT: "1079000",  # 2 s held since last counted
    }
    await aredis.hset(keys.job("paused"), mapping=record)
    totals = await JobRecords(aredis).totals("paused")
    assert totals is not None
    assert totals.elapsed_s == 21.0
    await aredis.hdel(keys.job("paused"), keys.JobField.ACTIVE_MS, keys.JobField.ACTIVE_AT)
    older = await JobRecords(aredis).totals("paused")  # recorded before active time counted
    assert older is not None
    assert older.elapsed_s == 81.0
