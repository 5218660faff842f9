"""A reader that stops reading (``tagsweep report JOB | head -1``): the command ends as
``cat big | head`` ends ``cat``, killed by SIGPIPE, with nothing on stderr."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
import redis

from producer.collect import collect
from producer.local import tagsweep_command
from producer.submit import create_job
from tests.helpers import HEADER, images, user_env, write
from worker.jobs import JobOptions

KILLED_BY_SIGPIPE = -signal.SIGPIPE


@pytest.fixture
def big_job(e2e_redis_url: str, tmp_path: Path) -> str:
    """A job whose report (8,000 rows, about a megabyte) is far more than a pipe holds, written
    into the test Redis (nothing queued: a report of pending rows is still one line a row)."""
    rows = [[image, f"key-{k}", "v"] for image in images(2000) for k in range(4)]
    path = write(tmp_path / "big.csv", HEADER, rows)
    collection = collect([str(path)], default_project_id="p", default_region="r")
    client = redis.Redis.from_url(e2e_redis_url, decode_responses=True)
    job, _ = create_job(client, collection, options=JobOptions(), max_tags=20)
    client.close()
    return job


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        tagsweep_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_report_into_head_1_ends_like_cat_killed_by_sigpipe(
    e2e_redis_url: str, big_job: str, fmt: str
) -> None:
    """The reader takes one line and closes the pipe while the report still has most of its
    megabyte to write (it exited 1, silently: click's own ending)."""
    with start(user_env(REDIS_URL=e2e_redis_url), "report", big_job, "--format", fmt) as command:
        assert command.stdout is not None
        assert command.stderr is not None
        first = command.stdout.readline()
        command.stdout.close()
        errors = command.stderr.read()
        assert command.wait(timeout=60) == KILLED_BY_SIGPIPE, errors
    assert first.startswith(b"image_id," if fmt == "csv" else b'{"image_id"')
    assert errors == b""


@pytest.mark.parametrize(
    "args",
    [
        ("report", "JOB"),
        ("status", "JOB"),
        ("status", "JOB", "--json"),
        ("jobs",),
        ("jobs", "--json"),
        ("validate", "BIG", "--json"),
        ("--help",),
        ("report", "--help"),
    ],
)
def test_every_command_ends_the_same_when_its_reader_closed_at_once(
    e2e_redis_url: str, big_job: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """A reader gone before the first write (``| head -0``, ``| true``): even a line that
    fits in the pipe meets the closed end, at its write or at the last flush."""
    names = {"JOB": big_job, "BIG": str(tmp_path / "big.csv")}
    with start(user_env(REDIS_URL=e2e_redis_url), *(names.get(a, a) for a in args)) as command:
        assert command.stdout is not None
        assert command.stderr is not None
        command.stdout.close()
        errors = command.stderr.read()
        assert command.wait(timeout=60) == KILLED_BY_SIGPIPE, errors
    assert errors == b""


def test_an_error_line_with_no_reader_ends_the_same(e2e_redis_url: str) -> None:
    """``tagsweep report nope 2>&1 | head -0``: the line naming the mistake has no reader
    either (it ended with a traceback that nobody could read, and 1)."""
    env = user_env(REDIS_URL=e2e_redis_url)
    with subprocess.Popen(
        tagsweep_command("report", "nope"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as command:
        assert command.stdout is not None
        command.stdout.close()
        assert command.wait(timeout=60) == KILLED_BY_SIGPIPE
