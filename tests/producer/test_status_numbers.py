"""The numbers a user reads: rate, elapsed and ETA after a retry, cancel or abort; the watcher's
pace and exit code; one ETA on the bar."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from producer.progress import follow_job
from producer.status import JobStatus, progress_line, render_status
from worker import keys
from worker.jobs import Job, JobOptions, JobState

T0 = 1_700_000_000_000


def status(state: JobState, counts: dict[str, int], **times: int) -> JobStatus:
    job = Job(
        "j1",
        state,
        total=sum(counts.values()) + (0 if state.finished else 100),
        chunks=1,
        options=JobOptions(),
        created_at_ms=T0,
        started_at_ms=times.get("started"),
        finished_at_ms=times.get("finished"),
        reason="cancelled by user" if state is JobState.CANCELLED else "",
        worked_before=times.get("before", 0),
        active_ms=times.get("active"),
        active_at_ms=times.get("active_at"),
    )
    workers = times.get("workers", 1)
    return JobStatus(job, counts, times.get("now", T0 + 60_000), live_workers=workers)


def test_rows_cancelled_unsent_do_not_count_in_the_rate() -> None:
    """20 rows worked in 10 s, then 5,000 marked cancelled at once: 2 rows/s, not 502."""
    over = status(
        JobState.CANCELLED,
        {"deleted": 20, "cancelled": 5000},
        started=T0 + 1000,
        finished=T0 + 11_000,
    )
    assert over.elapsed_s == 10.0
    assert over.rate_rows_per_s == pytest.approx(2.0)


def test_a_retry_rate_counts_only_the_rows_it_worked() -> None:
    """20,000 rows done before the retry; the retry worked 50 rows in 5 s: 10 rows/s."""
    going = status(
        JobState.RUNNING,
        {"deleted": 20_040, "failed": 10},
        started=T0 + 100_000,
        now=T0 + 105_000,
        before=20_000,
    )
    assert going.rate_rows_per_s == pytest.approx(10.0)
    assert going.eta_s == pytest.approx(10.0)  # 100 rows left at 10 rows/s


def test_a_job_not_started_has_no_elapsed_time_nor_rate() -> None:
    queued = status(JobState.CANCELLED, {"cancelled": 30}, finished=T0 + 5)
    assert (queued.elapsed_s, queued.rate_rows_per_s) == (0.0, 0.0)


def test_no_eta_once_the_job_is_over_and_the_missed_count_names_its_goals() -> None:
    over = status(
        JobState.COMPLETED_WITH_FAILURES,
        {"deleted": 8, "not_found": 1, "failed": 1},
        started=T0,
        finished=T0 + 2000,
    )
    assert over.eta_s is None
    assert "ETA" not in render_status(over)
    assert "ETA" not in progress_line(over)
    assert over.as_json()["eta_s"] is None
    assert progress_line(over).endswith(", 1 not deleted/not_found")


def test_a_running_job_with_no_live_worker_is_interrupted_with_no_eta_nor_idle_time() -> None:
    """Ctrl-C'd 60 s ago after 27 s of work: interrupted, elapsed 27 s, no ETA; the rate is
    the work's own."""
    idle = status(
        JobState.RUNNING,
        {"deleted": 2970},
        started=T0,
        active=27_000,
        active_at=T0 + 27_000,
        now=T0 + 87_000,
        workers=0,
    )
    assert idle.shown_state == "interrupted"
    assert (idle.elapsed_s, idle.eta_s) == (27.0, None)
    assert idle.rate_rows_per_s == pytest.approx(110.0)
    shown = render_status(idle)
    assert "state       interrupted (no live worker: run the same command again" in shown
    assert "ETA" not in shown
    assert progress_line(idle).startswith("interrupted: 2,970/3,070 rows")
    assert idle.as_json()["waiting"] == "interrupted"


def test_after_a_resume_the_idle_time_is_not_counted_but_the_time_since_a_renewal_is() -> None:
    """27 s of work before the interruption, 5 s since: the 2 minutes between do not count;
    the 3 s since the last renewal do."""
    going = status(
        JobState.RUNNING,
        {"deleted": 3520},
        started=T0,
        active=32_000,
        active_at=T0 + 177_000,
        now=T0 + 180_000,
    )
    assert going.shown_state == "running"
    assert going.elapsed_s == 35.0
    assert going.rate_rows_per_s == pytest.approx(3520 / 35)


def test_a_queued_job_with_no_live_worker_says_so() -> None:
    waiting = status(JobState.QUEUED, {}, workers=0)
    assert waiting.shown_state == "queued"
    assert "state       queued (no live worker: start `tagsweep worker`" in render_status(waiting)
    assert waiting.as_json()["waiting"] == "no_worker"


def test_a_cancelled_job_shows_how_far_it_got_not_100_percent() -> None:
    over = status(
        JobState.CANCELLED, {"deleted": 20, "cancelled": 80}, started=T0, finished=T0 + 2000
    )
    assert "progress    20 / 100 rows (20.0%), 80 cancelled" in render_status(over)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database of this module's own, flushed before and after."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    connection = redis.Redis.from_url(url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def write_job(client: redis.Redis, state: JobState, counts: dict[str, int], **fields: int) -> str:
    now_ms = int(time.time() * 1000)
    record = {
        "state": state.value,
        "total": 1000,
        "chunks": 1,
        "next_chunk": 1,
        "options": JobOptions().to_json(),
        "created_at": now_ms,
        "started_at": now_ms,
        **fields,
    }
    client.hset(keys.job("w1"), mapping=record)
    client.hset(keys.counts("w1"), mapping=counts)
    client.zadd(keys.JOBS, {"w1": now_ms})
    # A live worker (its heartbeat an hour ahead): a job nothing works is shown otherwise.
    client.zadd(keys.WORKERS, {"test-host:1": now_ms + 3_600_000})
    return "w1"


def test_the_bar_shows_one_eta_after_a_resume(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resumed job starts the bar at 600 of 1,000 rows; click's own ETA (hh:mm:ss) is off."""
    monkeypatch.setattr("click._termui_impl.isatty", lambda _file: True)
    job_id = write_job(client, JobState.RUNNING, {"deleted": 600}, worked_before=590)
    ticks = iter(range(1, 4))

    def advance(_status: object) -> None:
        step = next(ticks, None)
        if step is None:
            client.hset(keys.job(job_id), mapping={"state": "completed", "finished_at": 1})
            client.hset(keys.counts(job_id), "deleted", 1000)
        else:
            client.hincrby(keys.counts(job_id), "deleted", 10)

    follow_job(client, job_id, tty=True, interval_s=1.1, check=advance)
    shown = capsys.readouterr().err
    frames = [f for f in re.split(r"[\r\n]", shown) if "rows/s" in f]
    running = [f for f in frames if "1000/1000" not in f]
    assert running
    for frame in running:
        assert frame.count("ETA") == 1, frame
        assert not re.search(r"\d\d:\d\d:\d\d", frame), frame


def test_status_watch_piped_prints_at_its_interval_and_exits_as_run_would(
    client: redis.Redis, redis_url: str
) -> None:
    job_id = write_job(client, JobState.RUNNING, {"deleted": 10})
    url = redis_url.rsplit("/", 1)[0] + "/7"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "status", job_id, "--watch", "--interval", "0.2"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd()), "REDIS_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def finish_later() -> None:
        time.sleep(2.0)
        client.hset(keys.counts(job_id), mapping={"deleted": 990, "failed": 10})
        client.hset(keys.job(job_id), mapping={"state": "completed_with_failures"})

    threading.Thread(target=finish_later).start()
    _out, err = watcher.communicate(timeout=30)
    lines = [line for line in err.splitlines() if line.startswith("running:")]
    assert len(lines) >= 4, err  # every 0.2 s for 2 s, not once in 10 s
    assert watcher.returncode == 1, err  # run's code: some rows in another final status


def test_status_reads_a_job_while_redis_is_full(
    start_redis_server: Callable[..., str],
) -> None:
    """Redis refuses a MULTI, even of reads, past maxmemory: status must not need one."""
    from producer.status import read_status

    client = redis.Redis.from_url(
        start_redis_server("--maxmemory-policy", "noeviction"), decode_responses=True
    )
    client.hset(
        keys.job("full"),
        mapping={"state": "running", "total": 3, "chunks": 1, "options": JobOptions().to_json()},
    )
    client.hset(keys.counts("full"), "deleted", 2)
    client.config_set("maxmemory", 1)
    assert read_status(client, "full").counts == {"deleted": 2}
    client.close()
