"""Processes on this machine: a simulator server and Celery workers, started and stopped;
and a ``run``'s own: its private Redis and its workers, in the order that starts them soonest.

Used by ``tagsweep run`` (its local workers, ``--simulate``), by the benchmarks and by the
end-to-end tests, so that all three run the same real processes the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from producer.embedded import (
    STATE_DIR,
    EmbeddedRedis,
    check_free,
    free_port,
    launch_embedded_redis,
    private_url,
)


def tagsweep_command(*args: str) -> list[str]:
    """The command line of ``tagsweep ARGS`` with this interpreter."""
    return [sys.executable, "-m", "producer.cli", *args]


@dataclass
class LocalSimulator:
    """A ``tagsweep simulator`` process; ``url`` is where it listens."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_simulator(
    seed: Path | None, *args: str, env: dict[str, str] | None = None
) -> LocalSimulator:
    """Start a simulator on a free loopback port and wait until it listens."""
    command = tagsweep_command("simulator", "--port", "0")
    if seed is not None:
        command += ["--seed", str(seed)]
    # S603: the command is this interpreter running tagsweep itself, with our own arguments.
    # A session of its own: a Ctrl-C at the terminal is its caller's to handle (``run`` stops
    # it after its lane), not a second "interrupted" line and a simulator gone under the lane.
    process = subprocess.Popen(  # noqa: S603
        command + list(args), stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("simulator listening on "):
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()
        raise RuntimeError(f"the simulator did not start: {line!r}")
    return LocalSimulator(process, line.split()[-1])


@dataclass
class LocalWorker:
    """A ``tagsweep worker`` (Celery main process and pool) in a process group of its own."""

    process: subprocess.Popen[bytes]
    log_path: Path
    _asked: bool = field(default=False, init=False)  # the main process got its SIGTERM

    def kill(self) -> None:
        """SIGKILL the whole worker, main process and pool children, as a dying host would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 15.0, *, whole_group: bool = True) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL if it hangs.

        ``whole_group``: the pool processes get the SIGTERM too and stop at once, their chunks
        cut short (the rows recorded stay). Else only the main process gets it: it closes its
        pool, whose processes end as soon as their chunks are done, without billiard's 1 s
        wait (``worker.app``): the quick stop of a worker with nothing left to do.
        """
        if self.process.poll() is None:
            if whole_group:
                os.killpg(self.process.pid, signal.SIGTERM)
            else:
                self.ask_to_stop()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def ask_to_stop(self) -> None:
        """SIGTERM to the main process alone, once, without waiting (``stop`` then waits):
        a worker with nothing left to do stops while its caller writes the report."""
        if not self._asked and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self._asked = True


def start_worker(
    env: dict[str, str], *, processes: int, log_path: Path, wait_for_redis_s: float = 0.0
) -> LocalWorker:
    """Start ``tagsweep worker -c processes``; stdout (JSON lines) to ``log_path``, stderr
    beside it with the suffix ``.err``. ``wait_for_redis_s``: its Redis may still be starting."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copies of the descriptors; the parent's close at once.
    with log_path.open("ab") as out, log_path.with_suffix(".err").open("ab") as err:
        process = subprocess.Popen(  # noqa: S603 - tagsweep itself, our own arguments
            tagsweep_command(
                "worker", "-c", str(processes), "--wait-for-redis", str(wait_for_redis_s)
            ),
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return LocalWorker(process, log_path)


@contextlib.contextmanager
def local_redis(env: dict[str, str]) -> Iterator[tuple[str, Callable[[], None]]]:
    """``REDIS_URL`` when set, else a private Redis for as long as the run lasts. Yields its
    URL and a function that starts the private one (none: does nothing) and waits until it
    answers: its port is chosen first, so that the workers can start before it does."""
    if env.get("REDIS_URL"):
        yield env["REDIS_URL"], lambda: None
        return
    check_free(STATE_DIR)  # another run's folder: nothing started
    port = free_port()
    server: EmbeddedRedis | None = None

    def start() -> None:
        nonlocal server
        server = launch_embedded_redis(STATE_DIR, port=port)
        server.wait_until_up()

    try:
        yield private_url(port), start
    finally:
        if server is not None:
            server.stop()


@contextlib.contextmanager
def local_workers(env: dict[str, str], processes: int) -> Iterator[list[LocalWorker]]:
    """Local workers for the run; stopped warm when it ends, within 5 s when interrupted (a
    chunk cut short keeps its recorded rows; the rest is resumed)."""
    log_path = STATE_DIR / "worker.log"
    # Its Redis may still be starting (``local_redis``), and loading a resumed job's data.
    workers = [start_worker(env, processes=processes, log_path=log_path, wait_for_redis_s=30)]
    timeout_s, whole_group = 10.0, False  # the job is over: nothing to cut short
    try:
        yield workers
    except BaseException:
        timeout_s, whole_group = 5.0, True
        raise
    finally:
        for worker in workers:
            worker.stop(timeout_s=timeout_s, whole_group=whole_group)
