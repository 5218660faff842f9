"""Jobs nothing works: ``status`` and the exporter after Ctrl-C and with no worker alive,
``cancel`` of a job no worker holds, ``forget`` of a job whose messages are still queued."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from producer.local import tagsweep_command
from tests.e2e.test_operations import scrape, status_json, tag_files
from tests.helpers import (
    MakeScene,
    SimProcess,
    recorded_rows,
    run_cli,
    sim_user_env,
    user_env,
)
from worker import keys
from worker.broker import queue_keys


def queued_messages(client: redis.Redis) -> int:
    return sum(int(client.llen(queue)) for queue in queue_keys())


def test_a_queued_job_with_no_live_worker_says_so_in_status_and_on_the_exporter(
    tmp_path: Path, scene: MakeScene, start_exporter: Callable[[dict[str, str]], str]
) -> None:
    seed, job_csv = tag_files(tmp_path, 10)
    idle = scene(seed, workers=())
    job_id = idle.submit(job_csv)
    shown = run_cli(idle.env, "status", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "state       queued (no live worker: start `tagsweep worker`" in shown.stdout
    assert status_json(idle.env, job_id)["waiting"] == "no_worker"
    samples = scrape(start_exporter(idle.env), job_id)
    assert samples["tagsweep_job_without_worker"] == {(): 1.0}


def test_cancel_with_no_worker_ends_every_row_now_and_forget_clears_the_queue(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Six chunks queued, no worker: cancel records every row ``cancelled`` at once; forget
    removes the six messages; a worker started later finds nothing to log an error about."""
    seed, job_csv = tag_files(tmp_path, 30)
    idle = scene(seed, workers=())
    job_id = idle.submit(job_csv, "--chunk-requests", "5")
    client = redis.Redis.from_url(idle.redis_url, decode_responses=True)
    assert queued_messages(client) == 6
    cancel = run_cli(idle.env, "cancel", job_id)
    assert cancel.returncode == 0, cancel.stderr
    shown = status_json(idle.env, job_id)
    assert (shown["state"], shown["done"], shown["counts"]["cancelled"]) == ("cancelled", 30, 30)
    assert f"job {job_id} cancelled (30 unsent rows marked)" in cancel.stdout
    assert Counter(recorded_rows(client, job_id)).most_common(1)[0][1] == 1
    assert "progress    0 / 30 rows (0.0%), 30 cancelled" in run_cli(idle.env, "status").stdout

    forget = run_cli(idle.env, "forget", job_id)
    assert forget.returncode == 0, forget.stderr
    assert queued_messages(client) == 0
    worker = idle.add_worker(processes=1)
    deadline = time.monotonic() + 30
    while not any(str(e["event"]).endswith(" ready.") for e in _events(worker.log_path)):
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.2)
    assert [e for e in _events(worker.log_path) if e.get("level") == "error"] == []


def test_a_chunk_of_a_forgotten_job_is_dropped_at_debug(tmp_path: Path, scene: MakeScene) -> None:
    """A message left behind (one a worker had prefetched, say) of a job no longer in Redis."""
    seed, _job_csv = tag_files(tmp_path, 1)
    idle = scene(seed, workers=(), TAGSWEEP_LOG_LEVEL="debug")
    subprocess.run(
        [sys.executable, "-c", _DISPATCH, "gonejob"],
        env=idle.env,
        check=True,
    )
    worker = idle.add_worker(processes=1)
    deadline = time.monotonic() + 30
    while not (
        said := [e for e in _events(worker.log_path) if str(e["event"]).startswith("chunk.")]
    ):
        assert time.monotonic() < deadline, "the worker never took the message"
        time.sleep(0.2)
    assert [(e["event"], e["level"]) for e in said] == [("chunk.dropped", "debug")]
    assert [e for e in _events(worker.log_path) if e.get("level") == "error"] == []


_DISPATCH = "import sys; from worker.broker import dispatch_chunk; dispatch_chunk(sys.argv[1], 0)"


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_cancel_while_workers_hold_chunks_leaves_each_row_one_result(
    tmp_path: Path, scene: MakeScene
) -> None:
    """The chunks workers hold are left to them (they record their unsent rows), the others
    are marked at once: every row ends with exactly one result."""
    seed, job_csv = tag_files(tmp_path, 200)
    busy = scene(seed, "--latency-ms", "200")
    job_id = busy.submit(job_csv, "--rate", "20", "--chunk-requests", "10")
    busy.wait(job_id, timeout_s=30, until=lambda s: s.done >= 10)
    assert run_cli(busy.env, "cancel", job_id).returncode == 0
    over = busy.wait(job_id, timeout_s=60)
    assert over.done == 200
    client = redis.Redis.from_url(busy.redis_url, decode_responses=True)
    refs = recorded_rows(client, job_id)
    assert len(refs) == len(set(refs)) == 200
    assert over.counts["cancelled"] > 0
    assert sum(over.counts.values()) == 200
    assert client.hget(keys.job(job_id), "state") == "cancelled"


def test_status_after_ctrl_c_is_interrupted_and_the_idle_time_never_counts(
    tmp_path: Path, start_sim_process: Callable[..., SimProcess]
) -> None:
    """After Ctrl-C: ``interrupted``, no ETA, elapsed still while nothing works; after the
    resume the job's elapsed time is at most the two runs' work, not the pause between."""
    seed, _job = tag_files(tmp_path, 300)
    sim = start_sim_process(seed)
    command = tagsweep_command("run", "job.csv", "--rate", "40", "--report", "out.csv")
    first = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=sim_user_env(sim),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while sim.stats()["deletions"] < 100:
        assert time.monotonic() < deadline, "the first run made no progress"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    _out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err

    def status() -> dict[str, object]:
        shown = run_cli(user_env(), "status", "--json", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))

    paused = status()
    assert (paused["state"], paused["waiting"], paused["eta_s"]) == ("running", "interrupted", None)
    assert "state       interrupted" in run_cli(user_env(), "status", cwd=tmp_path).stdout
    time.sleep(4)  # a pause longer than the second run's own start and stop
    assert status()["elapsed_s"] == paused["elapsed_s"]

    started = time.monotonic()
    second = run_cli(sim_user_env(sim), *command[3:], cwd=tmp_path)
    second_s = time.monotonic() - started
    assert second.returncode == 0, second.stderr
    over = status()
    assert over["state"] == "completed"
    assert float(str(over["elapsed_s"])) <= float(str(paused["elapsed_s"])) + second_s
