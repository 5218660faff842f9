"""What ``status`` shows of a job: the ETA once the cloud named its limit."""

from __future__ import annotations

from producer.status import JobStatus, render_status
from worker.jobs import Job, JobOptions, JobState
from worker.model import CloudLimit

START_MS = 1_800_000_000_000


def running(
    *, done: int, elapsed_s: float, limit: CloudLimit | None, backup: bool = False
) -> JobStatus:
    job = Job(
        job_id="j1",
        state=JobState.RUNNING,
        total=1200,
        chunks=24,
        options=JobOptions(rate_per_s=200.0, backup=backup),
        created_at_ms=START_MS,
        started_at_ms=START_MS,
        cloud_limit=limit,
        requests=done,
    )
    return JobStatus(job, {"deleted": done}, START_MS + int(elapsed_s * 1000))


def test_without_a_named_limit_the_eta_follows_the_rows_per_second_so_far() -> None:
    status = running(done=600, elapsed_s=4, limit=None)
    assert status.eta_s == 4.0
    assert status.as_json()["cloud_limit"] is None


def test_over_a_long_window_the_eta_counts_with_the_named_limit_not_the_early_rate() -> None:
    """600 of 1,200 rows in 4 s (the first window's quota at --rate): 4 s more at that pace,
    but 600 calls at 600 per 30 s take 30 s."""
    status = running(done=600, elapsed_s=4, limit=CloudLimit(600, 30))
    assert status.eta_s == 30.0
    assert status.as_json()["cloud_limit"] == {"count": 600, "window_s": 30, "rate_per_s": 20.0}
    assert "cloud limit 600 calls per 30 s (20 requests/s)" in render_status(status)


def test_a_job_that_reads_first_needs_two_calls_a_row_at_the_limit() -> None:
    status = running(done=600, elapsed_s=4, limit=CloudLimit(600, 30), backup=True)
    assert status.eta_s == 60.0
