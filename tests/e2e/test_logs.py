"""The workers' logs add up (DESIGN: Logs): README's own jq commands, run over two worker
processes' stdout, give the job's counts as ``status --json`` and ``job.finished`` say, with
faults injected; after a SIGKILLed worker they fall short by at most its last interval."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import HEADER, REPO, MakeScene, Scene, images, run_cli, write
from worker import keys

JQ = shutil.which("jq")
pytestmark = pytest.mark.skipif(JQ is None, reason="jq is not installed (apt-get install jq)")


def readme_jq_commands() -> list[str]:
    """The commands of README's "Adding up the logs" block, as a user would paste them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("Adding up the logs", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("jq ")]
    assert len(commands) == 3, commands
    return commands


def run_jq(command: str, logs: Path, job_id: str) -> list[Any]:
    """Run one README command in the folder of the worker logs; its JSON outputs."""
    result = subprocess.run(
        ["bash", "-c", command],  # README's text, run as a user runs it
        cwd=logs,
        env={"PATH": os.environ["PATH"], "JOB": job_id},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    decoder, text, values = json.JSONDecoder(), result.stdout.strip(), []
    while text:  # jq prints one JSON value after another, pretty or compact
        value, end = decoder.raw_decode(text)
        values.append(value)
        text = text[end:].strip()
    return values or [None]


def added_up(logs: Path, job_id: str) -> tuple[dict[str, int], dict[str, int], list[Any]]:
    """(rows by status, requests/throttled/retries, job.finished lines) from README's jq."""
    rows_cmd, calls_cmd, finished_cmd = readme_jq_commands()
    rows = run_jq(rows_cmd, logs, job_id)[0]
    calls = run_jq(calls_cmd, logs, job_id)[0]
    finished = [line for line in run_jq(finished_cmd, logs, job_id) if line is not None]
    return rows or {}, calls or {}, finished


def status_counts(scene: Scene, job_id: str) -> dict[str, int]:
    """``tagsweep status JOB --json``'s counts, the statuses no row ended in left out."""
    result = run_cli(scene.env, "status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return {k: n for k, n in json.loads(result.stdout)["counts"].items() if n}


def job_counters(scene: Scene, job_id: str) -> dict[str, int]:
    client = redis.Redis.from_url(scene.redis_url, decode_responses=True)
    record = client.hgetall(keys.job(job_id))
    client.close()
    return {name: int(record.get(name) or 0) for name in ("requests", "throttled", "retries")}


def faulty_job(tmp_path: Path, scene: MakeScene, n: int, **env: str) -> tuple[Scene, Path]:
    """``n`` images of one tag each (a few not there: not_found) behind a simulator answering
    503s, dropping connections, and 429s above 100 calls/s (the gateway's, naming the limit:
    plain 429s, injected at random, cut the rate to a few calls/s); two workers, one process
    each, of 32 calls at a time (a retry's backoff holds a slot for 0.5 s or more)."""
    ids = images(n)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in ids[: n - 40]])
    job_csv = write(tmp_path / "job.csv", HEADER, [[i, "env", "a"] for i in ids])
    faults = ("--fail-rate", "503=0.1", "--drop-rate", "0.02", "--rate-limit", "100")
    env.setdefault("TAGSWEEP_CONCURRENCY", "32")
    made = scene(seed, *faults, "--random-seed", "24", workers=(1, 1), **env)
    return made, job_csv


def until(check: Callable[[], bool], *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.2)


def test_readme_s_jq_sums_of_job_progress_are_the_job_s_counts(
    tmp_path: Path, scene: MakeScene
) -> None:
    made, job_csv = faulty_job(tmp_path, scene, 2000)
    job_id, _ = made.run(
        job_csv, "--rate", "1000", "--max-attempts", "3", "--chunk-requests", "100", timeout_s=120
    )
    counts = status_counts(made, job_id)
    assert {"deleted", "not_found"} <= set(counts)
    assert sum(counts.values()) == 2000
    # Each process's last line of a chunk follows its last flush by a moment: the other
    # worker may still be writing it when the job is over.
    until(lambda: added_up(tmp_path, job_id)[0] == counts, timeout_s=10)

    rows, calls, finished = added_up(tmp_path, job_id)
    counters = job_counters(made, job_id)
    assert rows == counts
    assert calls == counters
    assert counters["throttled"] > 0
    assert counters["retries"] > counters["throttled"]
    [last] = finished
    assert last["rows"] == counts
    assert {name: last[name] for name in counters} == counters
    assert last["state"] == "completed_with_failures" if "failed" in counts else "completed"
    assert last["elapsed_s"] > 0


def test_after_a_sigkilled_worker_the_sum_falls_short_by_its_last_interval_at_most(
    tmp_path: Path, scene: MakeScene
) -> None:
    """The killed process's last interval is within the chunk it held (it logs at every
    chunk's end), so the sum falls short by at most a chunk's rows and requests, and never
    counts a row twice (its chunk is worked again by the other worker)."""
    made, job_csv = faulty_job(tmp_path, scene, 1000, TAGSWEEP_LEASE_S="3")
    chunk_requests = 50
    job_id = made.submit(
        job_csv, "--rate", "150", "--max-attempts", "3", "--chunk-requests", str(chunk_requests)
    )
    made.wait(job_id, timeout_s=60, until=lambda s: s.done >= 300)
    made.workers[0].kill()
    made.wait(job_id, timeout_s=90)
    made.workers[1].stop()  # a warm shutdown: every line of the live worker is out
    counts = status_counts(made, job_id)
    rows, calls, _ = added_up(tmp_path, job_id)

    short = {status: n - rows.get(status, 0) for status, n in counts.items()}
    assert all(n >= 0 for n in short.values()), short
    assert sum(short.values()) <= chunk_requests  # one process, one chunk of one-tag requests
    counters = job_counters(made, job_id)
    assert 0 <= counters["requests"] - calls["requests"] <= chunk_requests
