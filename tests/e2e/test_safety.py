"""Safety for a destructive job, end to end with real workers, Redis and a simulator process:
plan against live tags, --backup, --match-values, undo, and the confirmation prompt."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import redis

from producer.local import tagsweep_command
from tests.helpers import (
    TEST_AK,
    TEST_PROJECT,
    TEST_SK,
    MakeScene,
    Scene,
    SimProcess,
    converse,
    new_image_id,
    report_rows,
    run_cli,
    worker_env,
    write_csv,
)
from worker import keys
from worker.cloud.auth import AkSkAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials
from worker.model import Tag

COLUMNS = ["image_id", "key", "value"]
IMAGES = [new_image_id() for _ in range(40)]
MISSING_IMAGE = new_image_id()  # in the CSV, not in the cloud


def seed_rows() -> list[dict[str, str]]:
    """Each image: env=staging (or prod for every 8th), owner=team-N, and keep=yes (not in the
    CSV, so never touched)."""
    rows = []
    for n, image in enumerate(IMAGES):
        env = "prod" if n % 8 == 0 else "staging"
        for key, value in (("env", env), ("owner", f"team-{n}"), ("keep", "yes")):
            rows.append({"image_id": image, "key": key, "value": value})
    return rows


def job_rows() -> list[dict[str, str]]:
    """Delete env=staging and owner=team-N everywhere, a key no image has on the first five,
    and a tag of an image that does not exist."""
    rows = []
    for n, image in enumerate(IMAGES):
        rows.append({"image_id": image, "key": "env", "value": "staging"})
        rows.append({"image_id": image, "key": "owner", "value": f"team-{n}"})
        if n < 5:
            rows.append({"image_id": image, "key": "never-there", "value": "x"})
    rows.append({"image_id": MISSING_IMAGE, "key": "env", "value": "staging"})
    return rows


def all_tags(sim: SimProcess) -> dict[str, dict[str, str] | None]:
    return {image: sim.tags(TEST_PROJECT, image) for image in IMAGES}


def set_tag(sim: SimProcess, image: str, key: str, value: str) -> None:
    """Change a tag through the API, as somebody else would between the job and its undo."""

    async def call() -> None:
        async with aiohttp.ClientSession() as session:
            auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
            client = ImsClient(session, endpoint=sim.url, auth=auth)
            outcome = await client.tags_action(
                TEST_PROJECT, image, [Tag(key, value)], action="create"
            )
            assert outcome.http_status == 204, outcome

    asyncio.run(call())


def by_row(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["image_id"], row["key"]): row for row in rows}


@pytest.fixture
def job_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "job.csv", job_rows(), COLUMNS)


@pytest.fixture
def seeded_scene(tmp_path: Path, scene: MakeScene) -> Scene:
    """The seeded simulator and the environment of workers and commands; no worker yet."""
    seed = write_csv(tmp_path / "seed.csv", seed_rows(), COLUMNS)
    return scene(seed, "--rate-limit", "200", workers=())


def test_plan_then_backup_run_then_undo_restores_all_but_newer_values(
    tmp_path: Path, job_csv: Path, seeded_scene: Scene
) -> None:
    sim, env = seeded_scene.sim, seeded_scene.env
    before = all_tags(sim)

    # plan: read-only, through workers it starts itself; per-row answers on stdout.
    planned = run_cli(env, "plan", str(job_csv), "--rate", "150", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    plan = by_row(list(csv.DictReader(io.StringIO(planned.stdout))))
    assert len(plan) == len(job_rows())
    assert all_tags(sim) == before  # nothing changed
    assert sim.stats()["deletions"] == 0
    statuses = [row["status"] for row in plan.values()]
    assert statuses.count("would_delete") == 40 + 35  # owner everywhere, env where staging
    assert statuses.count("value_differs") == 5  # env=prod on every 8th image
    assert statuses.count("absent") == 5
    assert statuses.count("image_not_found") == 1
    assert plan[(IMAGES[0], "env")]["current_value"] == "prod"

    seeded_scene.add_worker()
    job, done = seeded_scene.run(job_csv, "--backup", "--rate", "150", timeout_s=60)
    assert done.counts == {"deleted": 85, "not_found": 1}
    report = by_row(report_rows(env, job))
    # plan agrees, row by row, with what the backup found.
    for row_key, planned_row in plan.items():
        was_present = report[row_key]["was_present"]
        expected = {
            "would_delete": "true",
            "value_differs": "true",
            "absent": "false",
            "image_not_found": "",
        }[planned_row["status"]]
        assert was_present == expected, (row_key, planned_row, report[row_key])
        if was_present == "true":
            assert report[row_key]["previous_value"] == planned_row["current_value"]
    assert all(tags == {"keep": "yes"} for tags in all_tags(sim).values())

    # Somebody sets keys again before the undo: those keep their newer values.
    set_tag(sim, IMAGES[1], "env", "canary")
    set_tag(sim, IMAGES[2], "owner", "team-2")  # the same value as before: nothing to do
    undo = run_cli(env, "undo", job, "--queue-only", cwd=tmp_path)
    assert undo.returncode == 0, undo.stderr
    undo_job = undo.stdout.strip().splitlines()[-1]
    undone = seeded_scene.wait(undo_job, timeout_s=60)
    assert undone.counts == {"restored": 79, "kept_newer": 1}
    after = all_tags(sim)
    expected_after = dict(before)
    changed = before[IMAGES[1]]
    assert changed is not None
    expected_after[IMAGES[1]] = {**changed, "env": "canary"}
    assert after == expected_after
    undo_report = by_row(report_rows(env, undo_job))
    assert undo_report[(IMAGES[1], "env")]["status"] == "kept_newer"
    assert undo_report[(IMAGES[1], "env")]["current_value"] == "canary"
    assert undo_report[(IMAGES[1], "env")]["value"] == "staging"

    # Undoing again follows the same undo job; an undo cannot itself be undone.
    again = run_cli(env, "undo", job, "--queue-only", cwd=tmp_path)
    assert again.stdout.strip().splitlines()[-1] == undo_job
    refused = run_cli(env, "undo", undo_job, "--queue-only", cwd=tmp_path)
    assert refused.returncode == 2
    assert f"job {undo_job} is an undo job; only a deleting job can be undone" in refused.stderr


def test_match_values_leaves_other_values_alone_and_undo_needs_a_backup(
    tmp_path: Path, job_csv: Path, seeded_scene: Scene
) -> None:
    sim, env = seeded_scene.sim, seeded_scene.env
    seeded_scene.add_worker()

    usage = run_cli(env, "submit", str(job_csv), "--match-values", cwd=tmp_path)
    assert usage.returncode == 2
    assert "--match-values needs --backup" in usage.stderr

    job, done = seeded_scene.run(
        job_csv, "--backup", "--match-values", "--rate", "150", timeout_s=60
    )
    assert done.counts == {"deleted": 80, "value_differs": 5, "not_found": 1}
    assert done.job.state.value == "completed_with_failures"  # the prod tags are still there
    for n, image in enumerate(IMAGES):
        expected = {"keep": "yes", "env": "prod"} if n % 8 == 0 else {"keep": "yes"}
        assert sim.tags(TEST_PROJECT, image) == expected
    differs = report_rows(env, job, "value_differs")
    assert {(r["key"], r["previous_value"], r["http_status"]) for r in differs} == {
        ("env", "prod", "200")
    }

    plain, _ = seeded_scene.run(job_csv, "--new", "--rate", "150", timeout_s=60)
    refused = run_cli(env, "undo", plain, "--queue-only", cwd=tmp_path)
    assert refused.returncode == 2
    assert f"job {plain} ran without --backup" in refused.stderr


def test_a_large_job_asks_on_a_terminal_and_nothing_is_queued_on_no(
    tmp_path: Path, e2e_redis_url: str, start_sim_process: Callable[..., SimProcess]
) -> None:
    seed = write_csv(tmp_path / "seed.csv", seed_rows(), COLUMNS)
    sim = start_sim_process(seed)
    env = worker_env(e2e_redis_url, sim)
    rows = [{"image_id": new_image_id(), "key": "k", "value": "v"} for _ in range(1001)]
    job_csv = write_csv(tmp_path / "big.csv", rows, COLUMNS)
    client = redis.Redis.from_url(e2e_redis_url)

    code, shown = converse(tagsweep_command("submit", str(job_csv)), env, tmp_path, "n")
    assert "Delete the tags of 1,001 rows? NO backup is kept" in shown
    assert code == 3
    assert client.zcard(keys.JOBS) == 0  # nothing written

    code, shown = converse(
        tagsweep_command("submit", str(job_csv), "--confirm-above", "2000"), env, tmp_path, None
    )
    assert code == 0
    assert "[y/N]" not in shown
    code, shown = converse(
        tagsweep_command("submit", str(job_csv), "--new", "--yes"), env, tmp_path, None
    )
    assert code == 0
    assert "[y/N]" not in shown
    code, shown = converse(
        tagsweep_command("submit", str(job_csv), "--new", "--backup"), env, tmp_path, "y"
    )
    assert "a backup is kept" in shown
    assert code == 0
    assert client.zcard(keys.JOBS) == 3
    # Without a terminal there is no question (the other tests submit 80+ rows that way).
    piped = run_cli(env, "submit", str(job_csv), "--new", cwd=tmp_path)
    assert piped.returncode == 0
    assert "[y/N]" not in piped.stderr
    client.close()
