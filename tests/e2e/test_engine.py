"""The distributed engine end to end: real Celery workers, real Redis, the simulator over HTTP."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from producer.local import tagsweep_command
from simulator.config import DEMO_DOMAIN_ID
from tests.helpers import REGION, TEST_PROJECT, MakeScene, images, recorded_rows, write
from worker import keys

OTHER_PROJECT = "fedcba9876543210fedcba9876543210"


def test_a_job_across_two_projects_ends_with_the_right_status_per_row(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Deleted where the image exists, not_found where not, rejected where the API refuses."""
    project_a, project_b, missing, system = images(150), images(150), images(20), images(10)
    header = ["image_id", "key", "value", "project_id"]
    seed = [
        [i, k, f"{k}-ü", TEST_PROJECT] for i in project_a + system for k in ("env", "owner", "keep")
    ]
    seed += [[i, k, f"{k}-ü", OTHER_PROJECT] for i in project_b for k in ("env", "owner", "keep")]
    projects = scene(write(tmp_path / "seed.csv", header, seed))
    sim = projects.sim
    rows = [[i, k, f"{k}-ü", TEST_PROJECT] for i in project_a + missing for k in ("env", "owner")]
    rows += [[i, k, f"{k}-ü", OTHER_PROJECT] for i in project_b for k in ("env", "owner")]
    rows += [[i, k, "x", TEST_PROJECT] for i in system for k in ("env", "_sys_managed")]
    job_csv = write(tmp_path / "job.csv", header, rows)

    job_id, status = projects.run(job_csv, "--rate", "300", "--chunk-requests", "25", timeout_s=60)

    assert status.job.state.value == "completed_with_failures"
    assert status.counts == {"deleted": 600, "not_found": 40, "rejected": 20}
    report = projects.report(job_id)
    assert len(report) == len(rows)
    by_row = {(r["image_id"], r["key"], r["project_id"]): r for r in report}
    assert len(by_row) == len(rows)
    for image in project_a:
        assert by_row[(image, "env", TEST_PROJECT)]["status"] == "deleted"
        assert by_row[(image, "env", TEST_PROJECT)]["value"] == "env-ü"
        assert sim.tags(TEST_PROJECT, image) == {"keep": "keep-ü"}
    for image in project_b:
        assert by_row[(image, "owner", OTHER_PROJECT)]["http_status"] == "204"
        assert sim.tags(OTHER_PROJECT, image) == {"keep": "keep-ü"}
        assert sim.tags(TEST_PROJECT, image) is None
    for image in missing:
        row = by_row[(image, "env", TEST_PROJECT)]
        assert (row["status"], row["http_status"], row["error_code"]) == (
            "not_found",
            "404",
            "IMG.0027",
        )
    for image in system:
        row = by_row[(image, "_sys_managed", TEST_PROJECT)]
        assert (row["status"], row["http_status"]) == ("rejected", "400")
        assert "system tags" in row["error_message"]
        assert sim.tags(TEST_PROJECT, image) == {
            "env": "env-ü",
            "owner": "owner-ü",
            "keep": "keep-ü",
        }
    assert all(r["request_id"] and r["finished_at"].endswith("Z") for r in report)

    # At the default level, a request that succeeded writes nothing; a filter on level >=
    # warning lists every request whose rows did not end well, with its image.
    events = projects.workers[0].log_events()
    done = [e for e in events if e["event"] == "batch.done"]
    assert {e["level"] for e in done if e["status"] == "not_found"} == {"info"}
    assert {e["image_id"] for e in done if e["status"] == "not_found"} == set(missing)
    assert {e["image_id"] for e in done if e["level"] == "warning"} == set(system)
    assert {e["status"] for e in done if e["level"] == "warning"} == {"rejected"}
    assert len(done) == len(missing) + len(system)
    assert {
        "timestamp",
        "level",
        "job_id",
        "image_id",
        "status",
        "http_status",
        "attempt",
        "latency_ms",
        "request_id",
        "rate",
    } <= set(done[0])
    # (Last of its process's lines: tests/worker/test_engine.py. Two processes write here.)
    assert [e["state"] for e in events if e["event"] == "job.finished"] == [
        "completed_with_failures"
    ]
    connected = [e["event"] for e in events if e["event"].startswith("Connected to")]
    assert connected
    assert "***" not in connected[0]  # the test Redis has no password to mask


def test_two_workers_on_one_host_have_names_of_their_own(tmp_path: Path, scene: MakeScene) -> None:
    workers = scene(write(tmp_path / "seed.csv", ["image_id", "key"], []), workers=(1, 1)).workers
    names: list[str] = []
    deadline = time.monotonic() + 60
    while len(names) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        names = [
            e["event"].removesuffix(" ready.")
            for w in workers
            for e in w.log_events()
            if e["event"].endswith(" ready.")
        ]
    assert len(names) == 2
    assert len(set(names)) == 2, names


# Per API: calls/s, requests per chunk, images per call. TMS's 20 calls (20 images each) go
# at 2/s in chunks of 2 calls, so that the kill comes mid-job as it does for v1.
KILL_PACE = {"v1": (25, 40, 1), "tms": (2, 2, 20)}


@pytest.mark.parametrize("api", sorted(KILL_PACE))
def test_a_killed_worker_s_chunks_are_taken_up_within_a_minute(
    tmp_path: Path, scene: MakeScene, api: str
) -> None:
    """SIGKILL a whole worker mid-job, start another: every row ends with one final result.

    Leases of 5 s instead of the default 30 s: the dead worker's chunks are taken up the same
    way, 25 s sooner (44 s -> ~20 s)."""
    rate, chunk_requests, per_call = KILL_PACE[api]
    ids = images(400)
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    killed = scene(seed, TAGSWEEP_LEASE_S="5", HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID)
    sim = killed.sim
    job_csv = write(
        tmp_path / "job.csv", header, [[i, k, "a"] for i in ids for k in ("env", "gone")]
    )
    pace = ["--rate", str(rate), "--chunk-requests", str(chunk_requests)]
    job_id = killed.submit(job_csv, *pace, "--api", api, "--tms-endpoint", sim.url)

    killed.wait(job_id, timeout_s=60, until=lambda s: s.done >= 200)
    killed.workers[0].kill()
    killed_at = time.monotonic()
    client = redis.Redis.from_url(killed.redis_url, decode_responses=True)
    assert client.zcard(keys.LEASES) >= 1  # the dead worker's leases are still there

    killed.add_worker(processes=2)
    status = killed.wait(job_id, timeout_s=120)
    remaining_calls = (status.job.total - 200) / 2 / per_call
    # Within a minute for the lease to expire and be reaped, plus the remaining work.
    assert time.monotonic() - killed_at < 60 + remaining_calls / rate + 10
    assert status.counts == {"deleted": 800}
    report = killed.report(job_id)
    assert len(report) == 800
    assert Counter((r["image_id"], r["key"]) for r in report).most_common(1)[0][1] == 1
    assert len(recorded_rows(client, job_id)) == 800
    assert all(sim.tags(TEST_PROJECT, i) == {} for i in ids)
    # Only requests in flight at the kill may have been sent twice.
    assert sim.stats()["deletions"] <= 400 + 2 * 16 * per_call


def test_a_chunk_longer_than_its_lease_is_worked_once(tmp_path: Path, scene: MakeScene) -> None:
    """At a low rate a chunk outlives several lease periods; heartbeats keep it with its
    worker, so no second worker (another worker idles beside it) ever sends its requests."""
    ids = images(60)
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    job_csv = write(tmp_path / "job.csv", header, [[i, "env", "a"] for i in ids])
    long = scene(seed, workers=(1, 1), TAGSWEEP_LEASE_S="3")
    _, status = long.run(job_csv, "--rate", "5", "--chunk-requests", "60", timeout_s=60)
    assert status.counts == {"deleted": 60}
    assert long.sim.stats()["deletions"] == 60
    events = [e["event"] for w in long.workers for e in w.log_events()]
    assert "lease.lost" not in events
    assert "chunk.redispatched" not in events


def test_cancel_stops_a_job_and_its_unsent_rows_end_cancelled(
    tmp_path: Path, scene: MakeScene
) -> None:
    ids = images(200)
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    job_csv = write(tmp_path / "job.csv", header, [[i, "env", "a"] for i in ids])
    cancelled = scene(seed, workers=(1,))
    job_id = cancelled.submit(job_csv, "--rate", "20", "--chunk-requests", "20")
    cancelled.wait(job_id, timeout_s=30, until=lambda s: s.done >= 20)
    subprocess.run(
        tagsweep_command("cancel", job_id), env=cancelled.env, check=True, capture_output=True
    )
    status = cancelled.wait(job_id, timeout_s=60)
    assert status.job.state.value == "cancelled"
    assert status.counts["cancelled"] > 100
    assert status.counts["deleted"] + status.counts["cancelled"] == 200
    assert cancelled.sim.stats()["deletions"] == status.counts["deleted"]


def test_retry_sends_again_only_the_rows_that_failed(tmp_path: Path, scene: MakeScene) -> None:
    ids = images(40)
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    job_csv = write(tmp_path / "job.csv", header, [[i, "env", "a"] for i in ids])
    retried = scene(seed, workers=(1,))
    sim, env = retried.sim, retried.env
    sim.post("/_sim/faults", {"fail_rates": {"503": 0.5}})
    job_id, first = retried.run(
        job_csv, "--rate", "200", "--max-attempts", "1", "--breaker-min", "1000", timeout_s=30
    )
    failed = first.counts.get("failed", 0)
    assert 0 < failed < 40
    sim.post("/_sim/faults", {"fail_rates": {}})
    result = subprocess.run(
        tagsweep_command("retry", job_id), env=env, check=True, capture_output=True, text=True
    )
    assert "queued again" in result.stdout
    second = retried.wait(job_id, timeout_s=30)
    assert second.counts == {"deleted": 40}
    assert second.job.state.value == "completed"
    assert sim.stats()["deletions"] == 40
    assert REGION in {r["region"] for r in retried.report(job_id)}


def test_a_retried_jobs_report_keeps_every_row_and_shows_the_new_results(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Rows the retry did not send are reported as before, field for field; the rows it sent
    show their new result, each row once, in the same order."""
    ids = images(40)
    header = ["image_id", "key", "value"]
    seed = [[i, k, "a"] for i in ids for k in ("env", "owner")]
    again = scene(write(tmp_path / "seed.csv", header, seed), workers=(1,))
    job_csv = write(tmp_path / "job.csv", header, seed)
    again.sim.post("/_sim/faults", {"fail_rates": {"503": 0.5}})
    job_id, _ = again.run(
        job_csv, "--rate", "200", "--max-attempts", "1", "--breaker-min", "1000", timeout_s=30
    )
    before = again.report(job_id)
    failed = [n for n, row in enumerate(before) if row["status"] == "failed"]
    assert 0 < len(failed) < 80
    again.sim.post("/_sim/faults", {"fail_rates": {}})
    subprocess.run(
        tagsweep_command("retry", job_id), env=again.env, check=True, capture_output=True
    )
    again.wait(job_id, timeout_s=30)
    after = again.report(job_id)
    assert len(after) == 80
    for n, (old, new) in enumerate(zip(before, after, strict=True)):
        assert [old[c] for c in ("image_id", "key", "value")] == [
            new[c] for c in ("image_id", "key", "value")
        ]
        if n in failed:
            assert (new["status"], new["http_status"], new["attempts"]) == ("deleted", "204", "1")
            assert new["request_id"] != old["request_id"]
        else:
            assert new == old
    client = redis.Redis.from_url(again.redis_url, decode_responses=True)
    # Each row recorded once, and the retried ones once more (their last entry wins).
    assert sorted(Counter(recorded_rows(client, job_id)).values()) == sorted(
        [1] * (80 - len(failed)) + [2] * len(failed)
    )
