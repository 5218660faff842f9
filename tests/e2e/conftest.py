"""Real processes for end-to-end tests: a simulator server and Celery workers, on loopback,
against the real Redis server (a database of its own, flushed before and after)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from producer.local import start_simulator, tagsweep_command
from producer.local import start_worker as start_local_worker
from tests.helpers import (
    TEST_AK,
    TEST_PROJECT,
    TEST_SK,
    Browser,
    MakeScene,
    Scene,
    SimProcess,
    WorkerProcess,
    worker_env,
)

E2E_DB = 9


@pytest.fixture
def e2e_redis_url(redis_url: str) -> Iterator[str]:
    """A Redis database for one test, empty at the start and flushed at the end."""
    url = redis_url.rsplit("/", 1)[0] + f"/{E2E_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


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


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        env: dict[str, str], *, processes: int = 2, wait_for_redis_s: float = 0.0
    ) -> WorkerProcess:
        local = start_local_worker(
            env,
            processes=processes,
            log_path=tmp_path / f"worker-{len(started)}.log",
            wait_for_redis_s=wait_for_redis_s,
        )
        worker = WorkerProcess(local.process, local.log_path)
        started.append(worker)
        return worker

    yield start
    # SIGKILL, not the warm shutdown of ``stop``: the test is over, nothing is left to finish,
    # and a warm shutdown took 1.5-2.5 s per worker (a minute over the e2e suite). Tests that
    # check a shutdown call ``worker.stop()`` themselves.
    for worker in started:
        worker.kill()


@pytest.fixture
def scene(
    e2e_redis_url: str,
    start_sim_process: Callable[..., SimProcess],
    start_worker: Callable[..., WorkerProcess],
) -> MakeScene:
    """Build scenes: ``scene(seed, *simulator_args, workers=(2,), **worker_env)`` starts a
    simulator seeded from ``seed``, then one worker per entry of ``workers`` (its process count)
    with the given extra environment; ``unset`` drops variables from it, ``redis_url`` uses
    another Redis than the test's database. Then ``.run(job_csv, *submit_args, timeout_s=...)``
    submits and waits. Everything started is stopped after the test."""

    def make(
        seed: Path,
        *sim_args: str,
        workers: Sequence[int] = (2,),
        redis_url: str | None = None,
        unset: Sequence[str] = (),
        **extra_env: str,
    ) -> Scene:
        sim = start_sim_process(seed, *sim_args)
        url = redis_url or e2e_redis_url
        env = worker_env(url, sim, **extra_env)
        for name in unset:
            del env[name]
        made = Scene(sim, env, url, [], start_worker)
        for processes in workers:
            made.add_worker(processes=processes)
        return made

    return make


@pytest.fixture
def start_exporter() -> Iterator[Callable[..., str]]:
    """``tagsweep exporter --port 0`` processes; returns each one's /metrics URL (the warning
    lines said before it listens go to ``said`` when given, else none is allowed)."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], said: list[str] | None = None) -> str:
        process = subprocess.Popen(
            tagsweep_command("exporter", "--port", "0"), env=env, stderr=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stderr is not None
        line = process.stderr.readline()
        while said is not None and line.startswith("warning: "):
            said.append(line.strip())
            line = process.stderr.readline()
        assert line.startswith("exporter listening on "), line
        return line.split()[-1]

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    """Debian's headless Chromium (``apt-get install chromium``); the test is skipped, saying
    why, where it is not installed."""
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium): no browser test"
        print(reason)
        pytest.skip(reason)
    return Browser(found, tmp_path / "chromium-profile")
