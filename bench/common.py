"""What the benchmarks share: a Redis database of their own, a clean environment for client
processes, and submitting a job and waiting for it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import redis

from producer.local import tagsweep_command
from producer.status import JobStatus, read_status


def bench_redis_url(db: int) -> str:
    """REDIS_URL's server (default the local one), database ``db``."""
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + f"/{db}"


def client_env(**values: str) -> dict[str, str]:
    """This environment without tagsweep's or the SDK's settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAGSWEEP_", "HUAWEICLOUD_"))}
    env.update(values)
    return env


BENCH_PROJECT = "0123456789abcdef0123456789abcdef"


def sim_worker_env(
    redis_url: str,
    sim_url: str,
    *,
    ak: str,
    sk: str,
    project_id: str = BENCH_PROJECT,
    region: str = "bench-1",
    **extra: str,
) -> dict[str, str]:
    """The environment of workers and commands aimed at a simulator on ``sim_url`` with its
    AK/SK, sharing ``redis_url``, logging JSON; ``extra`` adds or overrides settings."""
    return client_env(
        REDIS_URL=redis_url,
        HUAWEICLOUD_SDK_AK=ak,
        HUAWEICLOUD_SDK_SK=sk,
        HUAWEICLOUD_SDK_PROJECT_ID=project_id,
        TAGSWEEP_ENDPOINT=sim_url,
        TAGSWEEP_REGION=region,
        TAGSWEEP_LOG_FORMAT="json",
        **extra,
    )


def submit_job(env: dict[str, str], *args: str) -> str:
    """``tagsweep submit ARGS``; the job id."""
    out = subprocess.run(
        tagsweep_command("submit", *args), env=env, capture_output=True, text=True, check=True
    ).stdout
    return out.strip().splitlines()[-1]


def wait_finished(
    client: redis.Redis,
    job_id: str,
    *,
    interval_s: float = 0.2,
    on_tick: Callable[[], None] | None = None,
) -> JobStatus:
    """Poll until the job is over and every row is counted."""
    while True:
        status = read_status(client, job_id)
        if status.over:
            return status
        if on_tick is not None:
            on_tick()
        time.sleep(interval_s)
