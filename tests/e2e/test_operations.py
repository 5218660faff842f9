"""Running tagsweep for months: ``jobs``, retention (``--keep``), ``forget`` and the Prometheus
exporter, against a real Redis, real workers and the simulator."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from producer.local import tagsweep_command
from tests.helpers import HEADER, MakeScene, converse, images, run_cli, user_env, write
from worker import keys


def tag_files(tmp_path: Path, count: int, name: str = "job.csv") -> tuple[Path, Path]:
    """A seed of ``count`` images with one tag each, and the job that deletes those tags."""
    rows = [[image, "env", "prod"] for image in images(count)]
    return write(tmp_path / f"seed-{name}", HEADER, rows), write(tmp_path / name, HEADER, rows)


def keys_of(client: redis.Redis, job_id: str) -> list[str]:
    """Every key of the database that belongs to the job: named after it, or its resume key."""
    found = [str(k) for k in client.scan_iter(match=f"*{job_id}*", count=1000)]
    resume = [str(k) for k in client.scan_iter(match=keys.resume("*"), count=1000)]
    return found + [k for k in resume if client.get(k) == job_id]


def status_json(env: dict[str, str], job_id: str) -> dict[str, object]:
    result = run_cli(env, "status", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_jobs_lists_every_job_newest_first_with_its_counts(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Kinds, states, outcomes and files as status has them; --state filters; a backup not
    undone says when it expires."""
    present, missing = images(4), images(2)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "prod"] for i in present])
    first = write(tmp_path / "first.csv", HEADER, [[i, "env", "prod"] for i in present + missing])
    second = write(tmp_path / "second.csv", HEADER, [[present[0], "_sys_x", "v"]])
    jobs = scene(seed)
    env = jobs.env
    older, _ = jobs.run(first, timeout_s=60)
    newer, _ = jobs.run(second, "--backup", timeout_s=60)

    listing = json.loads(run_cli(env, "jobs", "--json").stdout)
    assert [entry["job_id"] for entry in listing] == [newer, older]
    for entry in listing:
        status = status_json(env, entry["job_id"])
        assert entry["state"] == status["state"]
        assert entry["counts"] == {k: v for k, v in status["counts"].items() if v}
        assert entry["rows"] == status["total"]
        assert entry["finished_at"]
        assert entry["created_at"]
        assert entry["expires_at"] == status["expires_at"]
    new, old = listing
    assert (old["kind"], old["counts"], old["files"]) == (
        "delete",
        {"deleted": 4, "not_found": 2},
        [str(first)],
    )
    assert (old["goal_rows"], old["missed_rows"], old["backup_expires_at"]) == (6, 0, None)
    assert (new["kind"], new["counts"], new["missed_rows"]) == (
        "delete with backup",
        {"rejected": 1},
        1,
    )
    assert new["backup_expires_at"] == new["expires_at"]
    assert status_json(env, newer)["backup_expires_at"] == new["expires_at"]

    only = json.loads(run_cli(env, "jobs", "--json", "--state", "completed").stdout)
    assert [entry["job_id"] for entry in only] == [older]
    table = run_cli(env, "jobs").stdout.splitlines()
    assert table[0].startswith("JOB ")
    assert table[1].startswith(newer)
    assert "0 deleted/not_found, 1 not deleted/not_found" in table[1]
    assert table[2].startswith("  backup expires ")
    assert table[3].startswith(older)
    assert "6 deleted/not_found, 0 not deleted/not_found" in table[3]


def test_a_finished_job_expires_after_its_keep_and_a_running_one_loses_nothing(
    tmp_path: Path, scene: MakeScene
) -> None:
    """--keep 2s: no key of the job has a TTL during a run of several seconds, every row ends
    recorded, and 2 s after the end no key of the job is left; report, retry and undo then
    say it expired."""
    seed, job_csv = tag_files(tmp_path, 30)
    kept = scene(seed)
    env = kept.env
    job_id = kept.submit(job_csv, "--rate", "6", "--keep", "2s", "--backup")
    client = redis.Redis.from_url(kept.redis_url, decode_responses=True)
    samples = 0
    started = time.monotonic()
    while (state := client.hget(keys.job(job_id), "state")) in ("queued", "running"):
        # The first-call marker (keys.verified) has a TTL of its own, whatever the job does.
        job_keys = [k for k in keys_of(client, job_id) if ":verified:" not in k]
        assert [k for k in job_keys if client.pttl(k) >= 0] == [], state
        samples += 1
        time.sleep(0.3)
    assert time.monotonic() - started > 4
    assert samples > 10
    final = kept.wait(job_id, timeout_s=5)
    assert final.counts == {"deleted": 30}  # nothing lost while it ran longer than its keep
    assert final.job.finished_at_ms is not None

    deadline = time.monotonic() + 10
    while keys_of(client, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert keys_of(client, job_id) == []
    assert time.time() * 1000 >= final.job.finished_at_ms + 2000
    for command in (["report", job_id], ["retry", job_id], ["undo", job_id, "--queue-only"]):
        result = run_cli(env, *command)
        assert result.returncode == 2, (command, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert f"job {job_id} has expired" in line
    assert json.loads(run_cli(env, "jobs", "--json").stdout) == []


def test_forget_refuses_a_running_job_and_deletes_every_key_of_a_finished_one(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Refused while running; on a terminal it asks first for a backup not undone ("no"
    keeps everything); then every key of the job goes, found by scanning the database."""
    seed, job_csv = tag_files(tmp_path, 20)
    forget = scene(seed)
    env = forget.env
    job_id = forget.submit(job_csv, "--rate", "3", "--backup")
    forget.wait(job_id, timeout_s=30, until=lambda s: s.job.state == "running")
    refused = run_cli(env, "forget", job_id)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert f"job {job_id} is running" in line
    assert run_cli(env, "cancel", job_id).returncode == 0
    forget.wait(job_id, timeout_s=60)
    client = redis.Redis.from_url(forget.redis_url, decode_responses=True)
    before = keys_of(client, job_id)
    assert keys.chunk(job_id, 0) in before
    assert keys.observed(job_id) in before

    code, shown = converse(tagsweep_command("forget", job_id), env, tmp_path, "n")
    assert "holds a backup not undone" in shown
    assert code == 3
    assert keys_of(client, job_id) == before
    forgotten = run_cli(env, "forget", job_id)  # no terminal: no question
    assert forgotten.returncode == 0, forgotten.stderr
    assert keys_of(client, job_id) == []
    assert client.zscore(keys.JOBS, job_id) is None
    gone = run_cli(env, "report", job_id)
    assert gone.returncode == 2
    assert f"no job {job_id!r}" in gone.stderr


def test_forget_waits_for_the_workers_to_let_go_of_a_cancelled_job(
    tmp_path: Path, scene: MakeScene
) -> None:
    """Straight after ``cancel`` the workers still hold chunks (they mark their rows cancelled):
    ``forget`` refuses in one line; once they let go it deletes every key of the job, and
    nothing of it comes back (status and report say there is no such job). Each call takes 3 s,
    so that a worker is still in the middle of one when ``forget`` first asks (waiting for a
    send slot, a worker sees the cancel within 0.25 s)."""
    seed, job_csv = tag_files(tmp_path, 300)
    held = scene(seed, "--latency-ms", "3000")
    env = held.env
    job_id = held.submit(job_csv, "--rate", "2", "--new")
    held.wait(job_id, timeout_s=30, until=lambda s: s.job.state == "running")
    assert run_cli(env, "cancel", job_id).returncode == 0
    refused = run_cli(env, "forget", job_id)
    assert refused.returncode == 2, refused.stdout
    [line] = refused.stderr.strip().splitlines()
    assert f"job {job_id} is cancelled but" in line
    assert "still held by workers" in line
    deadline = time.monotonic() + 90
    while (forgotten := run_cli(env, "forget", job_id)).returncode == 2:
        assert "still held by workers" in forgotten.stderr
        assert time.monotonic() < deadline, "the workers never let go of the cancelled job"
        time.sleep(1)
    assert forgotten.returncode == 0, forgotten.stderr
    time.sleep(3)  # whatever a worker would still write for the job
    client = redis.Redis.from_url(held.redis_url, decode_responses=True)
    assert keys_of(client, job_id) == []
    for command in ("status", "report"):
        gone = run_cli(env, command, job_id)
        assert gone.returncode == 2, gone.stderr
        assert f"no job {job_id!r} in this Redis" in gone.stderr


def scrape(url: str, job_id: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The samples of /metrics that concern the job or the fleet, by name and labels."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("job", job_id) != job_id:
                continue
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "job"))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_an_exporter_whose_redis_is_unreachable_at_its_start_serves_redis_up_0(
    start_exporter: Callable[..., str],
) -> None:
    """It says why in one line and serves ``tagsweep_redis_up 0`` (what an alert watches)
    instead of refusing to start."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said: list[str] = []
    url = start_exporter(user_env(REDIS_URL=f"redis://:pw-4711@127.0.0.1:{port}/0"), said)
    assert len(said) == 1
    assert f"cannot use Redis at redis://:***@127.0.0.1:{port}/0" in said[0]
    for _scrape in range(2):
        assert scrape(url, "")["tagsweep_redis_up"][()] == 0


def test_the_exporter_matches_status_during_a_run_and_its_counters_grow(
    tmp_path: Path, scene: MakeScene, start_exporter: Callable[..., str]
) -> None:
    """Scraped between two ``status --json`` readings, each row counter lies between them;
    429s from a throttling simulator are counted; a second scrape shows more."""
    seed, job_csv = tag_files(tmp_path, 120)
    watched = scene(seed, "--rate-limit", "15")
    env = watched.env
    url = start_exporter(env)
    job_id = watched.submit(job_csv, "--rate", "30")
    watched.wait(job_id, timeout_s=30, until=lambda s: s.done >= 10)

    before = status_json(env, job_id)
    first = scrape(url, job_id)
    after = status_json(env, job_id)
    assert after["state"] == "running", "the job ended too soon to be watched"
    rows = first["tagsweep_rows_total"]
    for status, count in before["counts"].items():
        assert count <= rows[(("status", status),)] <= after["counts"][status]
    assert first["tagsweep_job_rows"][()] == 120
    assert first["tagsweep_job_state"][(("state", "running"),)] == 1
    assert first["tagsweep_jobs"][(("state", "running"),)] == 1
    assert first["tagsweep_rate_limit_requests_per_second"][()] == 30
    assert first["tagsweep_workers"][()] >= 1
    assert first["tagsweep_redis_up"][()] == 1
    assert first["tagsweep_requests_total"][()] >= rows[(("status", "deleted"),)]

    time.sleep(3)
    second = scrape(url, job_id)
    deleted = (("status", "deleted"),)
    assert second["tagsweep_rows_total"][deleted] > rows[deleted]
    assert second["tagsweep_requests_total"][()] > first["tagsweep_requests_total"][()]
    final = watched.wait(job_id, timeout_s=60)
    last = scrape(url, job_id)
    assert last["tagsweep_rows_total"][deleted] == final.counts["deleted"] == 120
    assert last["tagsweep_throttled_requests_total"][()] > 0  # 30/s against a 15/s limit
    assert last["tagsweep_retries_total"][()] >= last["tagsweep_throttled_requests_total"][()]
    assert last["tagsweep_eta_seconds"][()] == 0
