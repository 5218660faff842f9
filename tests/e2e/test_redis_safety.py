"""A Redis that could lose rows is refused, and one that runs out of memory stops the job
cleanly: real redis-server processes with maxmemory settings, real workers, the simulator."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import redis

from tests.helpers import (
    MakeScene,
    SimProcess,
    WorkerProcess,
    recorded_rows,
    run_cli,
    worker_env,
    write,
)
from worker import keys


def tag_file(tmp_path: Path, images: int, tags: int) -> Path:
    """A CSV of ``images`` x ``tags`` rows; it seeds the simulator too (every tag exists)."""
    ids = [str(uuid.uuid4()) for _ in range(images)]
    rows = [[image, f"key-{n}", f"value-{n}"] for image in ids for n in range(tags)]
    return write(tmp_path / "tags.csv", ["image_id", "key", "value"], rows)


def test_submit_run_and_worker_refuse_a_redis_that_may_evict(
    tmp_path: Path,
    start_redis_server: Callable[..., str],
    start_sim_process: Callable[..., SimProcess],
) -> None:
    """maxmemory 50mb with allkeys-lru: exit 2 and one line naming maxmemory-policy, nothing
    written; --allow-eviction goes on with a warning."""
    url = start_redis_server("--maxmemory", "50mb", "--maxmemory-policy", "allkeys-lru")
    csv_path = tag_file(tmp_path, 3, 2)
    env = worker_env(url, start_sim_process(csv_path))
    for args in (["submit", str(csv_path)], ["worker", "-c", "1"], ["run", str(csv_path)]):
        result = run_cli(env, *args, timeout_s=60)
        assert result.returncode == 2, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert "maxmemory-policy allkeys-lru" in line
        assert "maxmemory-policy noeviction" in line
    assert redis.Redis.from_url(url).dbsize() == 0
    allowed = run_cli(env, "submit", str(csv_path), "--allow-eviction")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: this Redis has maxmemory-policy allkeys-lru" in allowed.stderr
    assert "keeps nothing on disk" in allowed.stderr  # started with --save "", no AOF


def _oom_events(worker: WorkerProcess) -> list[dict[str, object]]:
    return [e for e in worker.log_events() if e["event"] == "redis.out_of_memory"]


def test_out_of_memory_stops_the_job_with_an_error_and_no_row_counted_twice(
    tmp_path: Path,
    start_redis_server: Callable[..., str],
    scene: MakeScene,
) -> None:
    """noeviction and a job whose results do not fit: the job is aborted with a reason naming
    Redis' memory, logged as an error once per chunk (no tight loop); every recorded row is
    counted once, and the rows not recorded are simply pending."""
    url = start_redis_server("--maxmemory-policy", "noeviction")
    rows = 20_000
    csv_path = tag_file(tmp_path, rows // 20, 20)
    full = scene(csv_path, redis_url=url)
    sim, [worker] = full.sim, full.workers
    job_id = full.submit(csv_path, "--rate", "40")  # 800 rows/s at most
    full.wait(job_id, timeout_s=60, until=lambda s: s.done >= 1000)
    client = redis.Redis.from_url(url, decode_responses=True)
    samples = []
    for _ in range(5):
        samples.append(int(client.info("memory")["used_memory"]))
        time.sleep(0.2)
    # Well below the usage seen: results are one entry per request now (20 rows each) and
    # used_memory shrinks as the queue and leases drain (2.9 MB down to 2.4 MB at the end), so
    # any limit near the usage could be left behind. With noeviction, every write that may grow
    # memory is refused while used_memory is over maxmemory.
    client.config_set("maxmemory", min(samples) // 2)
    deadline = time.monotonic() + 90
    while not _oom_events(worker) and time.monotonic() < deadline:
        time.sleep(0.5)
    events = _oom_events(worker)
    assert events, "no redis.out_of_memory event"
    assert {e["level"] for e in events} == {"error"}
    assert "maxmemory" in str(events[0]["error"])
    if int(client.info("server")["redis_version"].split(".")[0]) >= 7:
        # Redis 7 lets the abort be written despite the full memory (a script flag).
        status = full.wait(job_id, timeout_s=30, until=lambda s: s.job.state == "aborted")
        assert "Redis is out of memory" in status.job.reason
    time.sleep(5)
    assert len(_oom_events(worker)) <= 15  # at most once per chunk before leases expire
    client.config_set("maxmemory", 0)
    worker.stop()
    counts = {k: int(v) for k, v in client.hgetall(keys.counts(job_id)).items()}
    recorded = len(recorded_rows(client, job_id))
    assert 1000 <= recorded < rows
    assert sum(counts.values()) == recorded  # each recorded row counted exactly once
    report = full.report(job_id)
    assert len(report) == rows
    seen = Counter(row["status"] for row in report)
    assert seen["pending"] == rows - recorded
    assert {s: n for s, n in seen.items() if s != "pending"} == counts
    deleted = [row for row in report if row["status"] == "deleted"]
    for row in deleted[:50]:  # a row recorded deleted was really deleted
        assert row["key"] not in (sim.tags(row["project_id"], row["image_id"]) or {})
