"""Real processes for end-to-end tests: a simulator server and Celery workers, on loopback,
against the real Redis server (a database of its own, flushed before and after)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.local import (
    LocalSimulator,
    LocalWorker,
    start_simulator,
    tagsweep_command,
)
from producer.local import start_worker as start_local_worker
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


@dataclass
class SimProcess:
    """A simulator process, with helpers to read its state over HTTP."""

    local: LocalSimulator

    @property
    def url(self) -> str:
        return self.local.url

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
        auth = ["--ak", TEST_AK, "--sk", TEST_SK, "--project-id", TEST_PROJECT]
        sim = SimProcess(start_simulator(seed, *auth, *args))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.local.stop()


class WorkerProcess(LocalWorker):
    """A local worker whose stdout tests read as JSON lines."""

    def log_events(self) -> list[dict[str, Any]]:
        # Every stdout line must be one JSON object: json.loads fails the test otherwise.
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]


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
        local = start_local_worker(
            env, processes=processes, log_path=tmp_path / f"worker-{len(started)}.log"
        )
        worker = WorkerProcess(local.process, local.log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no tagsweep settings (no REDIS_URL: the private Redis)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_")) and k != "REDIS_URL"
    }
    env.update(extra)
    return env


def run_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``tagsweep ARGS``, its output captured as text; the caller checks the exit code."""
    return subprocess.run(
        tagsweep_command(*args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


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
    done = until or (lambda s: s.over)
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
