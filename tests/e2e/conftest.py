"""Real processes for end-to-end tests: a simulator server and Celery workers, on loopback,
against the real Redis server (a database of its own, flushed before and after)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.status import JobStatus, read_status
from tests.conftest import TEST_AK, TEST_PROJECT, TEST_SK

E2E_DB = 9
REGION = "sim-region-1"


@pytest.fixture
def e2e_redis_url(redis_url: str) -> Iterator[str]:
    """A Redis database for one test, empty at the start and flushed at the end."""
    url = redis_url.rsplit("/", 1)[0] + f"/{E2E_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def tagsweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "producer.cli", *args]


@dataclass
class SimProcess:
    """A ``tagsweep simulator`` process."""

    process: subprocess.Popen[str]
    url: str

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310
            return json.load(response)

    def post(self, path: str, body: object) -> Any:
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return json.load(response)

    def stats(self) -> dict[str, Any]:
        return dict(self.get("/_sim/stats"))

    def tags(self, project_id: str, image_id: str) -> dict[str, str] | None:
        try:
            return dict(self.get(f"/_sim/images/{project_id}/{image_id}")["tags"])
        except urllib.error.HTTPError:
            return None


@pytest.fixture
def start_sim_process() -> Iterator[Callable[..., SimProcess]]:
    started: list[SimProcess] = []

    def start(seed: Path, *args: str) -> SimProcess:
        command = tagsweep_command("simulator", "--port", "0", "--seed", str(seed))
        command += ["--ak", TEST_AK, "--sk", TEST_SK, "--project-id", TEST_PROJECT, *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("simulator listening on "), line
        sim = SimProcess(process, line.split()[-1])
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.process.terminate()
        sim.process.wait(timeout=10)
        if sim.process.stdout:
            sim.process.stdout.close()


@dataclass
class WorkerProcess:
    """A ``tagsweep worker`` (Celery main process and its pool), in a process group."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children, as a host dying would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text().splitlines():
            events.append(json.loads(line))  # every stdout line must be one JSON object
        return events


def worker_env(redis_url: str, sim: SimProcess, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_"))}
    env.update(
        REDIS_URL=redis_url,
        HUAWEICLOUD_SDK_AK=TEST_AK,
        HUAWEICLOUD_SDK_SK=TEST_SK,
        HUAWEICLOUD_SDK_PROJECT_ID=TEST_PROJECT,
        TAGSWEEP_ENDPOINT=sim.url,
        TAGSWEEP_REGION=REGION,
        TAGSWEEP_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], *, processes: int = 2) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        # The child keeps its own copies of the descriptors; the parent's close at once.
        with log_path.open("wb") as out, log_path.with_suffix(".err").open("wb") as err:
            process = subprocess.Popen(
                tagsweep_command("worker", "-c", str(processes)),
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        worker = WorkerProcess(process, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def submit(env: dict[str, str], *args: str) -> str:
    """Run ``tagsweep submit`` and return the job id (the last line of stdout)."""
    result = subprocess.run(
        tagsweep_command("submit", *args), env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def wait_for_job(
    redis_url: str,
    job_id: str,
    *,
    timeout_s: float,
    until: Callable[[JobStatus], bool] | None = None,
) -> JobStatus:
    """Poll the job until ``until`` holds (default: finished with every row counted)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    done = until or (lambda s: s.job.state.finished and s.done >= s.job.total)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            current = read_status(client, job_id)
            if done(current):
                return current
            if time.monotonic() > deadline:
                pytest.fail(f"job {job_id} not there after {timeout_s}s: {current.as_json()}")
            time.sleep(0.2)
    finally:
        client.close()


def report_rows(env: dict[str, str], job_id: str, *only: str) -> list[dict[str, str]]:
    import csv
    import io

    args = ["report", job_id] + [f"--only={status}" for status in only]
    result = subprocess.run(
        tagsweep_command(*args), env=env, capture_output=True, text=True, check=True
    )
    return list(csv.DictReader(io.StringIO(result.stdout)))
