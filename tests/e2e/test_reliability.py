"""Restarts, resumes, bad connections, untrusted messages and secrets, with real processes."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.embedded import free_port, launch_embedded_redis, private_url, start_embedded_redis
from producer.local import tagsweep_command
from simulator.config import DEMO_DOMAIN_ID
from tests.helpers import (
    TEST_PROJECT,
    MakeScene,
    SimProcess,
    WorkerProcess,
    recorded_rows,
    report_rows,
    seeded,
    submit,
    wait_for_job,
    worker_env,
    write,
)
from worker import keys
from worker.formats import decode_chunk

QUEUES = ("tagsweep", "tagsweep:0", "tagsweep:5", "tagsweep:9")


def queued_chunks(client: redis.Redis) -> Counter[int]:
    """Chunk numbers of the tagsweep messages waiting in the broker's lists."""
    found: Counter[int] = Counter()
    for queue in QUEUES:
        for raw in client.lrange(queue, 0, -1):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            found[args[1]] += 1
    return found


def test_a_worker_started_before_its_redis_waits_for_it_and_its_main_process_stops_it(
    tmp_path: Path, scene: MakeScene, start_worker: Callable[..., WorkerProcess]
) -> None:
    """``run`` starts its workers before its private Redis (``--wait-for-redis``): they take
    most of a second to be ready. A worker starts without Celery's mingle (1 s of every start).
    Once the job is over, run sends SIGTERM to the worker's main process alone: its pool
    closes, its pool processes end (none is started in their place) and it exits 0."""
    seed, job_csv = seeded(tmp_path, 30)
    port = free_port()
    later = scene(seed, workers=(), redis_url=private_url(port))
    worker = start_worker(later.env, processes=2, wait_for_redis_s=60)
    server = launch_embedded_redis(tmp_path / "redis", port=port)
    try:
        server.wait_until_up()
        _, status = later.run(job_csv, "--rate", "1000", timeout_s=60)
        assert status.counts == {"deleted": 30}
        worker.stop(timeout_s=30, whole_group=False)
        assert worker.process.returncode == 0
        said = [str(event["event"]) for event in worker.log_events()]
        assert not [line for line in said if "mingle" in line or "exited with" in line], said
    finally:
        worker.kill()
        server.stop()


# Per API: calls/s, requests per chunk, images per call: TMS's 15 calls (20 images each) go at
# 2/s, one a chunk, so that Redis goes away mid-job as it does for v1's 300 calls at 30/s.
RESTART_PACE = {"v1": (30, 20, 1), "tms": (2, 1, 20)}


@pytest.mark.parametrize("api", sorted(RESTART_PACE))
def test_redis_restarted_mid_job_loses_and_doubles_nothing(
    tmp_path: Path, scene: MakeScene, api: str
) -> None:
    """Every row once after Redis returns; the workers say it dropped as warnings naming
    Redis, never asyncio's "Task exception was never retrieved" nor a task's traceback."""
    rate, chunk_requests, per_call = RESTART_PACE[api]
    seed, job_csv = seeded(tmp_path, 300)
    server = start_embedded_redis(tmp_path / "redis")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    try:
        restarted = scene(
            seed,
            redis_url=server.url,
            TAGSWEEP_LEASE_S="5",
            HUAWEICLOUD_SDK_DOMAIN_ID=DEMO_DOMAIN_ID,
        )
        sim = restarted.sim
        pace = ["--rate", str(rate), "--chunk-requests", str(chunk_requests)]
        job_id = restarted.submit(job_csv, *pace, "--api", api, "--tms-endpoint", sim.url)
        restarted.wait(job_id, timeout_s=60, until=lambda s: s.done >= 90)
        server.stop()  # SHUTDOWN: the AOF is written
        time.sleep(2)
        server = start_embedded_redis(tmp_path / "redis", port=port)
        status = wait_for_job(server.url, job_id, timeout_s=120)
        assert status.counts == {"deleted": 300}
        client = redis.Redis.from_url(server.url)
        assert len(recorded_rows(client, job_id)) == 300
        # In flight, or a chunk re-done.
        assert sim.stats()["deletions"] <= 300 + (2 * 16 + chunk_requests) * per_call
    finally:
        server.stop()
    lines = [json.loads(line) for line in restarted.workers[0].log_path.read_text().splitlines()]
    assert not [line for line in lines if "never retrieved" in line["event"]]
    assert not [line for line in lines if "raised unexpected" in line["event"]]
    said = {line["event"] for line in lines if line["level"] == "warning"}
    assert said & {"chunk.redis_lost", "redis.write_failed", "redis.task_failed"}


def test_a_submit_killed_half_way_resumes_and_queues_only_the_rest(
    tmp_path: Path, e2e_redis_url: str, start_sim_process: Callable[..., SimProcess]
) -> None:
    seed, job_csv = seeded(tmp_path, 3000)
    env = worker_env(e2e_redis_url, start_sim_process(seed))
    command = tagsweep_command("submit", str(job_csv), "--chunk-requests", "1")
    client = redis.Redis.from_url(e2e_redis_url, decode_responses=True)
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        jobs = client.zrange(keys.JOBS, 0, -1)
        if jobs and int(client.hget(keys.job(jobs[0]), "dispatched") or 0) > 300:
            break
        assert time.monotonic() < deadline
        assert first.poll() is None, "submit ended before it could be killed"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    job_id = jobs[0]
    assert int(client.hget(keys.job(job_id), "dispatched")) < 3000

    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert second.stdout.strip().splitlines()[-1] == job_id
    assert "resuming" in second.stderr
    counts = queued_chunks(client)
    assert set(counts) == set(range(3000))
    assert sum(counts.values()) <= 3001  # at most the chunk in flight at the kill, twice


@pytest.mark.parametrize(
    ("make_url", "expected"),
    [
        (lambda port: f"redis://:not-the-pw-4711@127.0.0.1:{port}/0", ":***@127.0.0.1"),
        (lambda port: f"rediss://127.0.0.1:{port}/0", "rediss://127.0.0.1"),
    ],
)
def test_a_wrong_password_or_tls_on_a_plain_server_is_one_clear_line(
    tmp_path: Path, make_url: Callable[[int], str], expected: str
) -> None:
    server = start_embedded_redis(tmp_path / "redis")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    redis.Redis.from_url(server.url).config_set("requirepass", "the-right-pw-0815")
    try:
        result = subprocess.run(
            tagsweep_command("status"),
            env={"PATH": "/usr/bin:/bin", "REDIS_URL": make_url(port)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        redis.Redis.from_url(server.url, password="the-right-pw-0815").shutdown(nosave=True)
        server.process.wait(timeout=10)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert expected in result.stderr
    assert "not-the-pw-4711" not in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_and_foreign_messages_are_refused_and_the_worker_goes_on(
    tmp_path: Path, scene: MakeScene
) -> None:
    seed, job_csv = seeded(tmp_path, 30)
    malformed = scene(seed, workers=(1,))
    env, [worker] = malformed.env, malformed.workers
    client = redis.Redis.from_url(malformed.redis_url)
    client.lpush("tagsweep:5", b"\x00not json at all")
    sender = (
        "import sys; from worker.app import app, use_broker; use_broker(sys.argv[1]);"
        "app.send_task('tagsweep.chunk', args=[1, 'x']);"
        "app.send_task('tagsweep.chunk', args=['only-one']);"
        "app.send_task('evil.task', args=[]);"
        "app.send_task('tagsweep.chunk', args=['j', 0], serializer='pickle')"
    )
    subprocess.run(
        [*tagsweep_command()[:1], "-c", sender, malformed.redis_url], env=env, check=True
    )
    _, status = malformed.run(job_csv, "--rate", "100", timeout_s=60)
    assert status.counts == {"deleted": 30}
    assert worker.process.poll() is None
    text = worker.log_path.read_text()
    assert "message.rejected" in text  # wrong argument types
    assert "unregistered task" in text.lower()  # a task tagsweep does not have
    assert "untrusted content" in text.lower() or "content disallowed" in text.lower()


def all_redis_text(client: redis.Redis) -> str:
    """Every key and value in a Redis database, as text."""
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        parts.append(str(key))
        if kind == b"string":
            parts.append(str(client.get(key)))
            if b":chunk:" in key:  # stored compressed: searched as the batches it holds
                parts.append(repr(decode_chunk(client.get(key) or b"")))
        elif kind == b"hash":
            parts.append(str(client.hgetall(key)))
        elif kind == b"list":
            parts.append(str(client.lrange(key, 0, -1)))
        elif kind == b"set":
            parts.append(str(client.smembers(key)))
        elif kind == b"zset":
            parts.append(str(client.zrange(key, 0, -1, withscores=True)))
    return "\n".join(parts)


def test_no_secret_reaches_a_log_redis_a_report_or_an_error(
    tmp_path: Path,
    e2e_redis_url: str,
    start_sim_process: Callable[..., SimProcess],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    ak, sk, password = "AKRECOGNISE0000042", "SK-RECOGNISE-secret-42", "PW-RECOGNISE-secret-42"
    ids = [str(uuid.uuid4()) for _ in range(40)]
    seed = write(
        tmp_path / "seed.csv", ["image_id", "key", "value"], [[i, "env", "a"] for i in ids]
    )
    job_csv = write(
        tmp_path / "job.csv", ["image_id", "key", "value"], [[i, "env", "a"] for i in ids]
    )
    sim = start_sim_process(
        seed, "--ak", ak, "--sk", sk, "--user", "ops", "--password", password, "--domain", "acme"
    )
    # Debug: a line per request too, so that every line a worker can write is searched.
    debug = {"TAGSWEEP_LOG_LEVEL": "debug"}
    aksk_env = worker_env(e2e_redis_url, sim, HUAWEICLOUD_SDK_AK=ak, HUAWEICLOUD_SDK_SK=sk, **debug)
    token_env = worker_env(
        e2e_redis_url,
        sim,
        TAGSWEEP_IAM_USER="ops",
        TAGSWEEP_IAM_PASSWORD=password,
        TAGSWEEP_IAM_DOMAIN="acme",
        TAGSWEEP_IAM_ENDPOINT=sim.url,
        **debug,
    )
    del token_env["HUAWEICLOUD_SDK_AK"], token_env["HUAWEICLOUD_SDK_SK"]
    bad_env = worker_env(
        e2e_redis_url, sim, HUAWEICLOUD_SDK_AK=ak, HUAWEICLOUD_SDK_SK=sk + "x", **debug
    )
    outputs: list[str] = []
    for env in (aksk_env, token_env, bad_env):
        worker = start_worker(env, processes=1)
        job_id = submit(env, str(job_csv), "--rate", "100", "--new")
        wait_for_job(e2e_redis_url, job_id, timeout_s=60)
        worker.stop()
        outputs.append(
            worker.log_path.read_text() + worker.log_path.with_suffix(".err").read_text()
        )
        outputs.append(json.dumps(report_rows(env, job_id)))
        outputs.append(
            subprocess.run(
                tagsweep_command("status", job_id),
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    tokens: list[Any] = sim.get("/_sim/tokens")["tokens"]
    assert tokens  # the token job really used tokens
    everything = "\n".join(outputs) + all_redis_text(redis.Redis.from_url(e2e_redis_url))
    for secret in (ak, sk, password, *tokens):
        assert secret not in everything, secret[:6]
    assert TEST_PROJECT in everything  # the scan did see the job's data
