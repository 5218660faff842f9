"""Run a command and measure its wall time and peak RSS (os.wait4: this child only)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mb: float
    returncode: int


def measure(command: list[str], *, env: dict[str, str] | None = None) -> Measured:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return Measured(wall_s, usage.ru_maxrss / 1024, process.returncode)


def best_of(runs: int, command: list[str]) -> Measured:
    """The fastest of several runs (the least disturbed by the rest of a shared machine)."""
    results = [measure(command) for _ in range(runs)]
    return min(results, key=lambda m: m.wall_s)
