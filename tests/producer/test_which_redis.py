"""One Redis per folder: where ``run`` keeps a private Redis (``./.tagsweep/``), the commands
that queue for workers elsewhere refuse to guess a shared one, so that nothing lands in a Redis
that ``status`` and ``jobs`` in the same folder do not read. Real command lines in a temp
folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from producer.embedded import start_embedded_redis
from tests.helpers import HEADER, TEST_AK, TEST_PROJECT, TEST_SK, images, run_cli, user_env, write


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    """A folder where a private Redis kept data (as ``run`` leaves it), with a job file."""
    start_embedded_redis(tmp_path / ".tagsweep").stop()
    write(tmp_path / "job.csv", HEADER, [[images(1)[0], "env", "a"]])
    return tmp_path


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("submit", "job.csv", "--project-id", TEST_PROJECT, "--region", "r1", "--yes"), "submit"),
        (("worker",), "worker"),
        (("retry", "somejob", "--queue-only"), "retry --queue-only"),
    ],
    ids=["submit", "worker", "retry-queue-only"],
)
def test_without_redis_url_a_run_folder_refuses_the_commands_of_a_shared_redis(
    run_folder: Path, args: tuple[str, ...], command: str
) -> None:
    """One line naming REDIS_URL and ``run``, exit 2; no job queued to the default URL."""
    env = user_env(HUAWEICLOUD_SDK_AK=TEST_AK, HUAWEICLOUD_SDK_SK=TEST_SK)
    refused = run_cli(env, *args, cwd=run_folder, timeout_s=60)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"tagsweep: {command} needs a Redis the workers share"), line
    assert "set REDIS_URL" in line
    assert "`tagsweep run`" in line
    assert refused.stdout == ""


def test_jobs_in_a_run_folder_reads_its_private_redis_and_submit_with_redis_url_works(
    run_folder: Path, redis_url: str
) -> None:
    """The private Redis is what ``jobs`` reads there; REDIS_URL points every command at one
    shared Redis, ``submit`` and ``jobs`` alike."""
    listed = run_cli(user_env(), "jobs", cwd=run_folder, timeout_s=60)
    assert listed.returncode == 0, listed.stderr
    url = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(url).flushdb()
    shared = user_env(REDIS_URL=url)
    queued = run_cli(
        shared,
        "submit",
        "job.csv",
        "--project-id",
        "p1",
        "--region",
        "r1",
        "--yes",
        "--new",
        cwd=run_folder,
    )
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.strip().splitlines()[-1]
    assert job_id in run_cli(shared, "jobs", cwd=run_folder).stdout
    assert job_id not in run_cli(user_env(), "jobs", cwd=run_folder).stdout
    redis.Redis.from_url(url).flushdb()
