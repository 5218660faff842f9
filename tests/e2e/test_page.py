"""The job page (``tagsweep exporter``'s ``/`` and ``/jobs/JOB``) in headless Chromium, against
a real exporter, Redis, workers and the simulator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from producer.local import tagsweep_command
from tests.helpers import HEADER, Browser, MakeScene, images, run_cli, write
from worker import keys
from worker.lua.rows import TIMELINE_BUCKET_MS


def counts_shown(html: str) -> dict[str, int]:
    return {s: int(n) for s, n in re.findall(r'data-status="(\w+)" data-count="(\d+)"', html)}


def fetch(url: str, *, data: bytes | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=30) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def finished_job(
    tmp_path: Path, scene: MakeScene, start_exporter: Callable[[dict[str, str]], str]
) -> tuple[str, str, dict[str, str], dict[str, object]]:
    """A job run through a throttling simulator, 6 of whose rows the API rejects (system
    tags): (page URL, job id, environment, ``status --json`` once it ended)."""
    ids, system = images(60), images(6)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in ids + system])
    rows = [[i, "env", "a"] for i in ids] + [[i, "_sys_managed", "x"] for i in system]
    job_csv = write(tmp_path / "job.csv", HEADER, rows)
    watched = scene(seed, "--rate-limit", "5")
    page = start_exporter(watched.env).removesuffix("metrics")
    job_id, _ = watched.run(job_csv, "--rate", "10", timeout_s=90)
    status = run_cli(watched.env, "status", job_id, "--json")
    assert status.returncode == 0, status.stderr
    return page, job_id, watched.env, json.loads(status.stdout)


def test_the_pages_show_the_counts_of_status_json_a_point_per_10_s_and_the_errors(
    browser: Browser, finished_job: tuple[str, str, dict[str, str], dict[str, object]]
) -> None:
    """In Chromium: ``/`` and ``/jobs/JOB`` show the counts, done and total of ``status
    --json``; the chart has one point per 10 s bucket from the job's start to its end; the
    rejected rows are listed with their errors; the learnt limit is shown with its scope; the
    report downloads as ``report`` writes it.
    (One test: the job takes some 15 s to run.)"""
    page, job_id, env, status = finished_job
    assert status["state"] == "completed_with_failures"
    listing = browser.dom(page)
    row = re.search(rf'<tr data-job="{job_id}">.*?</tr>', listing, re.S)
    assert row is not None, listing
    assert counts_shown(row[0]) == status["counts"]
    assert f'data-done="{status["done"]}" data-total="{status["total"]}"' in row[0]
    assert f">{status['state']}<" in row[0]

    job_page = browser.dom(f"{page}jobs/{job_id}")
    summary = re.search(r'<table class="summary".*?</table>', job_page, re.S)
    assert summary is not None, job_page
    assert counts_shown(summary[0]) == status["counts"]
    record = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True).hgetall(keys.job(job_id))
    assert (record["cloud_limit"], record["cloud_limit_scope"]) == ("5/1", "user")
    limit = re.search(r'<span class="cloud-limit">([^<]*)</span>', job_page)
    assert limit is not None, job_page
    assert limit[1].startswith("5 calls per 1 s (5 requests/s)"), limit[1]
    assert limit[1].endswith("; scope user"), limit[1]
    start, end = int(record["started_at"]), int(record["finished_at"])
    buckets = end // TIMELINE_BUCKET_MS - start // TIMELINE_BUCKET_MS + 1
    assert f'data-points="{buckets}"' in job_page
    lines = re.findall(r'<polyline class="(\w+)" points="([^"]*)"', job_page)
    assert [(name, len(points.split())) for name, points in lines] == [
        ("rows", buckets),
        ("throttled", buckets),
    ]
    report = run_cli(env, "report", job_id)
    rejected = [line.split(",") for line in report.stdout.splitlines() if ",rejected," in line]
    assert len(rejected) == 6

    group = re.search(r'<section class="failures" data-status="rejected".*?</section>', job_page)
    assert group is not None, job_page
    assert 'data-count="6"' in group[0]
    shown = re.findall(r'<td class="error">([^<]+)</td>', group[0])
    assert len(shown) == 6
    assert all(message and message in report.stdout for message in shown)
    assert {line[0] for line in rejected} <= set(re.findall(r"<td>([\w-]+)</td>", group[0]))

    assert fetch(f"{page}jobs/{job_id}/report.csv") == (200, report.stdout)


def test_the_page_is_read_only_says_so_for_unknown_jobs_and_warns_off_loopback(
    redis_url: str, start_exporter: Callable[[dict[str, str]], str]
) -> None:
    """No browser needed: what the routes answer besides the pages."""
    env = {**os.environ, "REDIS_URL": redis_url}
    page = start_exporter(env).removesuffix("metrics")
    assert fetch(f"{page}jobs/nosuchjob") == (404, "no job 'nosuchjob' in this Redis\n")
    assert fetch(page, data=b"x")[0] == 405
    assert "tagsweep_redis_up 1.0" in fetch(f"{page}metrics")[1]

    anywhere = subprocess.Popen(
        tagsweep_command("exporter", "--host", "0.0.0.0", "--port", "0"),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert anywhere.stderr is not None
        said = [anywhere.stderr.readline() for _ in range(3)]
        assert "readable by anyone who reaches 0.0.0.0" in said[2], said
    finally:
        anywhere.terminate()
        anywhere.wait(timeout=10)
        if anywhere.stderr is not None:
            anywhere.stderr.close()


def test_a_running_jobs_pages_show_counts_between_two_status_readings(
    browser: Browser,
    tmp_path: Path,
    scene: MakeScene,
    start_exporter: Callable[[dict[str, str]], str],
) -> None:
    """While the job runs, each count the pages show lies between the ``status --json``
    read just before and the one read just after."""
    ids = images(60)
    seed = write(tmp_path / "seed.csv", HEADER, [[i, "env", "a"] for i in ids])
    watched = scene(seed)
    page = start_exporter(watched.env).removesuffix("metrics")
    job_id = watched.submit(seed, "--rate", "4")
    watched.wait(job_id, timeout_s=30, until=lambda s: s.done >= 5)

    def status() -> dict[str, int]:
        done = run_cli(watched.env, "status", job_id, "--json")
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found["state"] == "running", "the job ended too soon to be watched"
        return dict(found["counts"])

    before = status()
    listing, job_page = browser.dom(page), browser.dom(f"{page}jobs/{job_id}")
    after = status()
    for html in (listing, job_page):
        shown = counts_shown(html)
        assert shown.keys() == before.keys()
        assert all(before[s] <= shown[s] <= after[s] for s in shown), (before, shown, after)
