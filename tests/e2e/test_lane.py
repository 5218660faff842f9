"""``run``'s own lane (producer/lane.py): a small job is worked in the run process before any
worker would have been ready; a longer one is handed over to the workers it then starts. Either
way every row ends once, in the report, and the workers' log adds up to the job's counts."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer.local import tagsweep_command
from tests.helpers import SimProcess, read_report, run_cli, sim_user_env, user_env, write

HEADER = ["image_id", "key", "value"]


def log_lines(folder: Path) -> list[dict[str, Any]]:
    """The workers' log of a run in ``folder``, every line a JSON object."""
    text = (folder / ".tagsweep" / "worker.log").read_text()
    return [json.loads(line) for line in text.splitlines()]


def added_up(lines: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    """Rows by status and requests, summed over every ``job.progress`` line."""
    rows: Counter[str] = Counter()
    requests = 0
    for line in lines:
        if line["event"] == "job.progress":
            rows.update(line["rows"])
            requests += line["requests"]
            assert line["rows_per_s"] >= 0, line  # two chunks of one job in one process
    return rows, requests


def celery_started(lines: list[dict[str, Any]]) -> bool:
    return any(line.get("logger", "").startswith("celery") for line in lines)


def a_job(tmp_path: Path, start: Callable[..., SimProcess], n: int) -> dict[str, str]:
    """``n`` images with two tags each, seeded in a simulator; the user's environment."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    rows = [[i, key, "a"] for i in ids for key in ("env", "team")]
    write(tmp_path / "job.csv", HEADER, rows)
    return sim_user_env(start(write(tmp_path / "seed.csv", HEADER, rows)))


def test_a_small_run_is_done_in_its_own_process_and_its_log_adds_up(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    env = a_job(tmp_path, start_sim_process, 10)
    done = run_cli(env, "run", "job.csv", "--report", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {r["status"] for r in read_report(tmp_path / "out.csv")} == {"deleted"}
    lines = log_lines(tmp_path)
    assert not celery_started(lines), "a 10-image job needed no worker"
    rows, requests = added_up(lines)
    assert (rows, requests) == (Counter(deleted=20), 10)
    (finished,) = [line for line in lines if line["event"] == "job.finished"]
    assert finished["rows"] == {"deleted": 20}


def test_a_longer_run_is_handed_over_to_its_workers_and_every_row_ends_once(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """At --rate 100, 1,000 images (10 chunks, the lane's two at a time taking 2 s) take 10 s:
    the lane's pace stays flat after its first second, so the workers start; once they beat
    (within 4 s, even on a slow machine) the lane takes no new chunk and they work the rest."""
    env = a_job(tmp_path, start_sim_process, 1000)
    done = run_cli(env, "run", "job.csv", "--rate", "100", "--report", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = read_report(tmp_path / "out.csv")
    assert len(report) == 2000
    assert Counter((r["image_id"], r["key"]) for r in report).most_common(1)[0][1] == 1
    assert {r["status"] for r in report} == {"deleted"}
    lines = log_lines(tmp_path)
    assert celery_started(lines), "a 10 s job at a flat pace is handed over"
    by_workers = [line for line in lines if line.get("data", {}).get("return_value") == "'worked'"]
    assert 0 < len(by_workers) < 10, "the workers worked some chunks, the lane the first"
    assert added_up(lines) == (Counter(deleted=2000), 1000)


def test_a_wrong_setting_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    """The lane reads the workers' settings in the run's own thread: a misspelt one is the
    run's error (exit 2), not a failure of its lane handed on to workers that fail alike."""
    write(tmp_path / "job.csv", HEADER, [[str(uuid.uuid4()), "env", "a"]])
    env = user_env(TAGSWEEP_RAET="10")
    done = run_cli(env, "run", "job.csv", "--simulate", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "unknown setting(s) TAGSWEEP_RAET" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".tagsweep").exists()


def test_a_run_works_its_own_job_only_not_one_interrupted_in_the_same_folder(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """Job B is interrupted while its workers hold chunks (their leases then expire) and its
    other chunks wait in the queue; job A run next in the same folder must not work them (with
    real credentials it would carry on a job its user stopped). B resumes with its own run."""
    ids_a, ids_b = ([str(uuid.uuid4()) for _ in range(600)] for _ in range(2))
    write(tmp_path / "a.csv", HEADER, [[i, "env", "a"] for i in ids_a])
    write(tmp_path / "b.csv", HEADER, [[i, "env", "a"] for i in ids_b])
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in ids_a + ids_b])
    sim = start_sim_process(seed)
    env = sim_user_env(sim, TAGSWEEP_LEASE_S="2")
    b_command = tagsweep_command("run", "b.csv", "--rate", "100", "--report", "b.csv.out")
    first = subprocess.Popen(b_command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while sim.stats()["deletions"] < 350:  # handed over: its workers hold chunks
        assert time.monotonic() < deadline, "job B made no progress"
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    time.sleep(3)  # B's leases expire
    before = sim.stats()["deletions"]

    a = run_cli(env, "run", "a.csv", "--rate", "100", "--report", "a.csv.out", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    assert sim.stats()["deletions"] - before == 600, "job A's run worked job B's chunks"
    assert {r["status"] for r in read_report(tmp_path / "a.csv.out")} == {"deleted"}

    b = run_cli(env, "run", "b.csv", "--rate", "100", "--report", "b.csv.out", cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    report = read_report(tmp_path / "b.csv.out")
    assert len(report) == 600
    assert {r["status"] for r in report} == {"deleted"}
