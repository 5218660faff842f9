"""A private Redis server for ``tagsweep run`` without ``REDIS_URL``: its data (AOF on) under
``./.tagsweep/``, so an interrupted run can be resumed, listening on loopback only; always the
same ``redis-server`` for one folder (``server_binary``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from producer.server_binary import AOF_DIR, SINGLE_AOF, choose_binary
from producer.store.server import answers, shut_down
from producer.stray_aof import fold_stray_aof, has_stray_aof
from worker.errors import ConfigError

STATE_DIR = Path(".tagsweep")
# Where a running private Redis can be reached, for the commands run beside it (status, ...).
URL_FILE = "redis.url"


def holds_private_data(directory: Path = STATE_DIR) -> bool:
    """Whether a private Redis kept data under ``directory`` (an earlier run, plan or undo),
    in either AOF layout (``server_binary``)."""
    return (directory / AOF_DIR).is_dir() or (directory / SINGLE_AOF).is_file()


def running_private_url(directory: Path = STATE_DIR) -> str | None:
    """The URL of the private Redis running over ``directory``, if one is."""
    pidfile, urlfile = directory / "redis.pid", directory / URL_FILE
    if not (pidfile.exists() and urlfile.exists()):
        return None
    pid = int(pidfile.read_text().strip() or "0")
    return urlfile.read_text().strip() if pid and _alive(pid) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A private Redis, started; ``url`` reaches it once ``wait_until_up`` returned."""

    process: subprocess.Popen[bytes]
    url: str
    directory: Path
    binary: str

    def wait_until_up(self) -> None:
        """Wait for it to answer, fold a stray AOF in (``stray_aof``), then say where it is
        (``URL_FILE``); ``ConfigError`` if it does not start."""
        _wait_until_up(self.process, self.url, self.directory)
        if has_stray_aof(self.directory):
            try:
                fold_stray_aof(
                    self.directory, self.binary, redis.Redis.from_url(self.url), free_port()
                )
            except (redis.RedisError, OSError) as exc:
                self.process.kill()
                raise ConfigError(
                    f"could not fold {self.directory / SINGLE_AOF} in: {exc}"
                ) from None
        # Written whole, then renamed: a command beside the run (``status``) reading it as it
        # is written read an empty URL.
        written = self.directory / (URL_FILE + ".new")
        written.write_text(self.url + "\n")
        written.replace(self.directory / URL_FILE)

    def stop(self) -> None:
        """Shut down with a final AOF write (SHUTDOWN), or terminate if it does not answer."""
        if self.process.poll() is None:
            with contextlib.suppress(redis.RedisError, OSError):
                shut_down(redis.Redis.from_url(self.url))
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        (self.directory / "redis.pid").unlink(missing_ok=True)
        (self.directory / URL_FILE).unlink(missing_ok=True)


def start_embedded_redis(directory: Path = STATE_DIR, *, port: int | None = None) -> EmbeddedRedis:
    """Start the private Redis over ``directory`` (created if needed) and wait for it."""
    server = launch_embedded_redis(directory, port=port)
    server.wait_until_up()
    return server


def launch_embedded_redis(directory: Path = STATE_DIR, *, port: int | None = None) -> EmbeddedRedis:
    """Start the private Redis over ``directory`` without waiting for it (``run`` checks the
    files meanwhile)."""
    directory.mkdir(parents=True, exist_ok=True)
    check_free(directory)
    port = port or free_port()
    binary = choose_binary(directory)
    command = _server_command(binary.path, directory, port)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
    return EmbeddedRedis(process, private_url(port), directory, binary.path)


def private_url(port: int) -> str:
    """The URL of the private Redis on ``port``."""
    return f"redis://127.0.0.1:{port}/0"


def check_free(directory: Path) -> None:
    """``ConfigError`` when another run's Redis serves ``directory``."""
    pidfile = directory / "redis.pid"
    if pidfile.exists():
        other = int(pidfile.read_text() or "0")
        if other and _alive(other):
            raise ConfigError(
                f"another tagsweep run uses {directory}/ (Redis pid {other}); let it end, or "
                f"stop that run (a Redis left behind by a killed run: kill {other})"
            )


def _server_command(binary: str, directory: Path, port: int) -> list[str]:
    """A loopback-only server over ``directory``, AOF on (synced every second), no RDB."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory.resolve()),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--pidfile",
        str((directory / "redis.pid").resolve()),
        "--logfile",
        str((directory / "redis.log").resolve()),
    ]


def _wait_until_up(process: subprocess.Popen[bytes], url: str, directory: Path) -> None:
    """Wait (15 s at most) for the new server to answer; ``ConfigError`` with the end of its
    log if it exits or stays silent."""
    deadline = time.monotonic() + 15
    while True:
        try:
            if answers(redis.Redis.from_url(url, socket_connect_timeout=0.5)):
                return
        except (redis.RedisError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log = (directory / "redis.log").read_text(errors="replace")[-500:]
            raise ConfigError(f"the private Redis did not start: {log.strip()}")
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
