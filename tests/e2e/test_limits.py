"""Throughput under the cloud's limits, with real workers against the simulator."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from producer.local import tagsweep_command
from producer.status import JobStatus, render_status
from tests.helpers import MakeScene, WorkerProcess, seeded
from worker.model import CloudLimit


def test_at_the_cloud_s_limit_no_call_is_throttled_and_the_limit_is_used(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Limit 40/s, --rate 40, two worker processes, 16 s of work: no 429, >= 95% of 40/s."""
    seed, job_csv = seeded(tmp_path, 640)
    at_limit = scene(seed, "--rate-limit", "40", workers=(1, 1))
    _, status = at_limit.run(job_csv, "--rate", "40", "--chunk-requests", "20", timeout_s=60)
    stats = at_limit.sim.stats()
    assert status.counts == {"deleted": 640}
    assert "429" not in stats["calls_by_status"]
    achieved = (stats["calls_by_status"]["204"] - 1) / (
        stats["last_call_at"] - stats["first_call_at"]
    )
    assert achieved >= 0.95 * 40, achieved


def test_above_the_cloud_s_limit_the_start_is_gentle_and_the_rate_settles_below_it(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Limit 40/s, --rate 400, 1,000 requests: under 15% of the calls of the first 5 s get a
    429 (no stampede), under 2% after; every row deleted; the learnt limit shows in status."""
    seed, job_csv = seeded(tmp_path, 1000)
    above = scene(seed, "--rate-limit", "40")
    _, status = above.run(job_csv, "--rate", "400", "--chunk-requests", "50", timeout_s=100)
    assert status.counts == {"deleted": 1000}
    first, later = throttled_shares(above.sim.stats()["timeline"], split_s=5)
    assert first < 0.15, first
    assert later < 0.02, later
    assert status.job.effective_rate_per_s is not None
    assert status.job.effective_rate_per_s < 40
    assert status.as_json()["cloud_limit"] == {"count": 40, "window_s": 1.0, "rate_per_s": 40.0}


def throttled_shares(timeline: dict[str, list[int]], *, split_s: int) -> tuple[float, float]:
    """The share of calls throttled in the first ``split_s`` seconds, and after."""
    seconds = {int(second): counts for second, counts in timeline.items()}
    start = min(seconds)
    parts: list[tuple[int, int]] = [(0, 0), (0, 0)]
    for second, (calls, throttled) in seconds.items():
        part = int(second >= start + split_s)
        parts[part] = (parts[part][0] + calls, parts[part][1] + throttled)
    (first_calls, first_throttled), (later_calls, later_throttled) = parts
    return (
        first_throttled / first_calls if first_calls else 0.0,
        later_throttled / later_calls if later_calls else 0.0,
    )


# A window of minutes, scaled down: what matters is a window many seconds long whose quota goes
# in a few seconds at --rate, and enough calls per window that its probes (one per thirtieth of
# the window, worker/limits/scripts.py) stay a small share. 600 per 10 s keeps the calls per
# window and the window's 30 probes of the 600/30s this test had, in a third of the time
# (51 s -> ~20 s).
WINDOW_IMAGES = 1200
WINDOW_LIMIT, WINDOW_S = 600, 10
WINDOW_RATE = WINDOW_LIMIT / WINDOW_S


def run_window_job(
    tmp_path: Path, scene: MakeScene, *sim_args: str
) -> tuple[JobStatus, dict[str, Any], list[WorkerProcess]]:
    """1,200 images against 600 calls per fixed 10 s window (60/s on average), --rate 200."""
    seed, job_csv = seeded(tmp_path, WINDOW_IMAGES)
    limit = f"{WINDOW_LIMIT}/{WINDOW_S}s"
    windowed = scene(seed, "--rate-limit", limit, *sim_args)
    _, status = windowed.run(job_csv, "--rate", "200", "--chunk-requests", "50", timeout_s=100)
    return status, windowed.sim.stats(), windowed.workers


@pytest.mark.timeout(120)
def test_a_window_of_minutes_named_by_the_gateway_fails_no_row_and_keeps_its_pace(
    tmp_path: Path, scene: MakeScene
) -> None:
    """600/10s: every row deleted, under 10% of the calls throttled, at most 1.5 times the
    ideal 20 s; the limit is learnt from the 429 message, logged once, shown by status."""
    status, stats, workers = run_window_job(tmp_path, scene)
    assert status.counts == {"deleted": WINDOW_IMAGES}
    calls = sum(stats["calls_by_status"].values())
    assert stats["calls_by_status"].get("429", 0) < 0.10 * calls, stats["windows"]
    ideal_s = WINDOW_IMAGES / WINDOW_RATE
    assert status.elapsed_s <= 1.5 * ideal_s, (status.elapsed_s, stats["windows"])
    learned = [e for e in workers[0].log_events() if e["event"] == "ratelimit.learned"]
    assert [(e["limit"], e["window_s"]) for e in learned] == [(WINDOW_LIMIT, float(WINDOW_S))]
    assert status.job.cloud_limit == CloudLimit(WINDOW_LIMIT, WINDOW_S)
    shown = render_status(status)
    assert "cloud limit 600 calls per 10 s (60 requests/s)" in shown


@pytest.mark.timeout(120)
def test_a_window_of_minutes_with_a_plain_429_message_still_fails_no_row(
    tmp_path: Path, scene: MakeScene
) -> None:
    """The gateway names no limit: a second of nothing but 429s tells a spent window."""
    status, stats, _ = run_window_job(tmp_path, scene, "--rate-limit-message", "plain")
    assert status.counts == {"deleted": WINDOW_IMAGES}, stats["windows"]
    assert status.job.cloud_limit is None


def test_faults_and_dropped_connections_end_with_every_row_deleted(
    tmp_path: Path, scene: MakeScene
) -> None:
    """20% 503s and 5% dropped connections: all deleted, no row beyond the attempt cap."""
    seed, job_csv = seeded(tmp_path, 300)
    faulty = scene(seed, "--fail-rate", "503=0.2", "--drop-rate", "0.05")
    job_id, status = faulty.run(job_csv, "--rate", "300", "--max-attempts", "12", timeout_s=90)
    assert status.counts == {"deleted": 300}
    attempts = [int(row["attempts"]) for row in faulty.report(job_id)]
    assert max(attempts) <= 12
    assert max(attempts) > 1
    assert faulty.sim.stats()["calls_by_status"]["503"] > 20


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        ({"HUAWEICLOUD_SDK_SK": "not-the-right-sk"}, "verify aksk signature fail"),
        ({"HUAWEICLOUD_SDK_AK": "NOSUCHAK0000000000001"}, "err:ak not exist"),
    ],
    ids=["wrong-sk", "unknown-ak"],
)
def test_wrong_credentials_abort_after_one_call_and_never_lock_the_ak(
    tmp_path: Path, scene: MakeScene, wrong: dict[str, str], says: str
) -> None:
    """A wrong SK or an AK the gateway does not know: one refused call, the rest cancelled."""
    seed, job_csv = seeded(tmp_path, 200)
    refused = scene(seed, **wrong)
    job_id, status = refused.run(job_csv, "--rate", "200", timeout_s=60)
    assert status.job.state.value == "aborted"
    assert refused.sim.stats()["calls_by_status"] == {"401": 1}
    assert status.counts == {"unauthorized": 1, "cancelled": 199}
    shown = subprocess.run(
        tagsweep_command("status", job_id),
        env=refused.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "aborted (AK/SK refused (APIGW.0301: Incorrect IAM authentication" in shown
    assert says in shown
    assert not [value for value in wrong.values() if value in shown]  # neither AK nor SK


def test_everything_forbidden_aborts_after_about_breaker_min_calls(
    tmp_path: Path, scene: MakeScene
) -> None:
    seed, job_csv = seeded(tmp_path, 400)
    forbidden = scene(seed, "--fail-rate", "403=1")
    _, status = forbidden.run(job_csv, "--rate", "200", "--breaker-min", "50", timeout_s=60)
    assert status.job.state.value == "aborted"
    assert "failed" in status.job.reason
    calls = forbidden.sim.stats()["calls_by_status"]["403"]
    # At most: the calls in flight when it tripped (16 per process), plus those sent while a
    # worker's view of the job state was up to 0.1 s old (at 200/s).
    assert 50 <= calls <= 50 + 2 * 16 + 200 * 0.1
    assert status.counts["forbidden"] == calls
    assert status.counts["cancelled"] == 400 - calls
