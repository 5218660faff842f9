"""Running the same ``tagsweep run`` again finishes its job, after an abort, a cancel or Ctrl-C:
rows that ended ``cancelled`` (never sent) are sent, rows already final are not."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from producer.local import tagsweep_command
from tests.helpers import (
    REPO,
    SimProcess,
    read_report,
    run_cli,
    sim_user_env,
    user_env,
    write,
)


def scene(tmp_path: Path, images: int) -> tuple[Path, list[str]]:
    """A seed of ``images`` images with two tags each, and a job deleting both."""
    ids = [str(uuid.uuid4()) for _ in range(images)]
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, k, "a"] for i in ids for k in ("env", "x")])
    write(tmp_path / "job.csv", header, [[i, k, "a"] for i in ids for k in ("env", "x")])
    return seed, ids


def private_redis(tmp_path: Path, timeout_s: float = 30) -> redis.Redis:
    """The running private Redis of a ``run`` in ``tmp_path``."""
    url_file = tmp_path / ".tagsweep" / "redis.url"
    deadline = time.monotonic() + timeout_s
    while not url_file.exists():
        assert time.monotonic() < deadline, "the private Redis did not start"
        time.sleep(0.05)
    return redis.Redis.from_url(url_file.read_text().strip(), decode_responses=True)


def job_of(output: str) -> str:
    found = re.search(r"^job +([0-9a-f]{16}):", output, re.MULTILINE)
    assert found, output
    return found.group(1)


def test_an_aborted_run_run_again_with_the_right_sk_finishes_every_row_once(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """The rows never sent and those of the call that revealed the wrong SK (the abort's own
    cause) are sent on the second run; nothing is sent twice."""
    seed, _ids = scene(tmp_path, 300)
    sim = start_sim_process(seed)
    command = ("run", "job.csv", "--backup", "--rate", "200", "--report", "out.csv")

    first = run_cli(sim_user_env(sim, sk="a-wrong-sk"), *command, cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "resume      fix the cause, then run the same command again" in first.stdout
    assert "tagsweep undo" not in first.stdout  # nothing was deleted: nothing to undo
    job_id = job_of(first.stdout)
    report = read_report(tmp_path / "out.csv")
    cancelled = [r for r in report if r["status"] == "cancelled"]
    refused = [r for r in report if r["status"] == "unauthorized"]
    assert cancelled
    assert refused
    assert len(cancelled) + len(refused) == 600
    # The reason the job stopped is on every row it stopped.
    assert len({r["error_message"] for r in cancelled}) == 1
    assert cancelled[0]["error_message"].startswith("AK/SK refused (APIGW.0301: ")
    assert sim.stats()["deletions"] == 0

    second = run_cli(sim_user_env(sim), *command, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"job {job_id} was aborted: AK/SK refused" in second.stderr
    assert f"resuming its {len(report):,} unsent or unauthorized rows" in second.stderr
    assert job_of(second.stdout) == job_id
    assert f"undo        tagsweep undo {job_id}" in second.stdout
    report = read_report(tmp_path / "out.csv")
    assert len(report) == 600
    assert {r["status"] for r in report} == {"deleted"}
    # One call per image, all in the second run.
    assert sim.stats()["deletions"] == 300
    assert sim.stats()["max_deletions_per_image"] == 1

    fresh = run_cli(sim_user_env(sim), *command, "--new", cwd=tmp_path)
    assert "resuming" not in fresh.stderr
    assert job_of(fresh.stdout) != job_id


def test_a_cancelled_run_run_again_finishes_and_its_rate_counts_only_this_pass(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """The rate after the resume is measured over the rows this pass worked, not all done."""
    seed, _ids = scene(tmp_path, 400)
    sim = start_sim_process(seed)
    env = sim_user_env(sim)
    command = tagsweep_command("run", "job.csv", "--rate", "40", "--report", "out.csv")
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    client = private_redis(tmp_path)
    deadline = time.monotonic() + 60
    while sim.stats()["deletions"] < 150:
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.2)
    job_id = client.zrange("tagsweep:jobs", 0, 0)[0]
    cancel = run_cli(user_env(), "cancel", job_id, cwd=tmp_path)
    assert cancel.returncode == 0, cancel.stderr
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 3, err
    sent_before = sim.stats()["deletions"]
    assert sent_before < 400

    second = run_cli(env, *command[3:], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"job {job_id} was cancelled: cancelled by user; resuming its" in second.stderr
    report = read_report(tmp_path / "out.csv")
    assert len(report) == 800
    assert {r["status"] for r in report} == {"deleted"}
    assert sim.stats()["max_deletions_per_image"] == 1

    shown = json.loads(run_cli(user_env(), "status", job_id, "--json", cwd=tmp_path).stdout)
    # 40 requests/s of two rows each: at most 80 rows/s (+ a start-up burst), however many
    # rows the first pass had done.
    assert 0 < shown["rate_rows_per_s"] <= 2 * 40 * 1.5
    assert shown["eta_s"] is None
    assert "ETA" not in second.stdout


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_simulate_interrupted_then_run_again_resumes_the_same_job(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A new simulator serves the second run; only the chunks not done are queued again. A
    SIGTERM stops the run's workers and Redis as Ctrl-C does (none is left running)."""
    with (REPO / "examples" / "sample.csv").open(newline="") as sample:
        rows = list(csv.DictReader(sample))
    with (tmp_path / "big.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        for _copy in range(5):  # 1,650 rows: distinct images per copy
            renamed: dict[str, str] = {}
            for row in rows:
                image = renamed.setdefault(row["image_id"], str(uuid.uuid4()))
                writer.writerow({**row, "image_id": image})
    command = tagsweep_command(
        "run", "big.csv", "--simulate", "--rate", "100", "--chunk-requests", "10"
    )
    first = subprocess.Popen(
        command, cwd=tmp_path, env=user_env(), stderr=subprocess.PIPE, text=True
    )
    client = private_redis(tmp_path)
    deadline = time.monotonic() + 60
    while True:
        jobs = client.zrange("tagsweep:jobs", 0, 0)
        counts = client.hgetall(f"tagsweep:job:{jobs[0]}:counts") if jobs else {}
        if sum(int(n) for n in counts.values()) > 300:
            break
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.2)
    chunks = int(client.hget(f"tagsweep:job:{jobs[0]}", "chunks"))
    first.send_signal(stop)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "run the same command again to resume it" in err
    assert not (tmp_path / ".tagsweep" / "redis.pid").exists()  # the private Redis stopped

    second = run_cli(user_env(), *command[3:], cwd=tmp_path, timeout_s=300)
    assert second.returncode == 0, second.stderr
    to_go = re.search(rf"resuming job {jobs[0]}: (\d+) chunk", second.stderr)
    assert to_go is not None, second.stderr
    assert 0 < int(to_go.group(1)) < chunks
    report = read_report(tmp_path / f"tagsweep-report-{jobs[0]}.csv")
    assert len(report) == 1650
    assert {r["status"] for r in report} == {"deleted"}
