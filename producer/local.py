"""Processes on this machine: a simulator server and Celery workers, started and stopped.

Used by ``tagsweep run`` (its local workers, ``--simulate``), by the benchmarks and by the
end-to-end tests, so that all three run the same real processes the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


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
    process = subprocess.Popen(  # noqa: S603
        command + list(args), stdout=subprocess.PIPE, text=True, env=env
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
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()


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
