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
    cpu_s: float = 0.0  # user + system time of the child


def measure(command: list[str], *, env: dict[str, str] | None = None) -> Measured:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall_s = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    cpu_s = usage.ru_utime + usage.ru_stime
    return Measured(wall_s, usage.ru_maxrss / 1024, process.returncode, cpu_s)


def best_of(runs: int, command: list[str]) -> Measured:
    """The fastest of several runs (the least disturbed by the rest of a shared machine)."""
    results = [measure(command) for _ in range(runs)]
    return min(results, key=lambda m: m.wall_s)


def best_of_interleaved(runs: int, *commands: list[str]) -> list[Measured]:
    """The fastest run of each command, the commands taking turns run after run, so that a
    noisy spell on a shared machine falls on all of them alike rather than on one."""
    results: list[list[Measured]] = [[] for _ in commands]
    for _ in range(runs):
        for command, found in zip(commands, results, strict=True):
            found.append(measure(command))
    return [min(found, key=lambda m: m.wall_s) for found in results]


def paired_ratios(runs: int, base: list[str], ours: list[str]) -> list[tuple[Measured, Measured]]:
    """``runs`` pairs of (base, ours) run one right after the other, so that each ratio of a
    pair is taken under the same load of a shared machine; a median of them is the figure."""
    return [(measure(base), measure(ours)) for _ in range(runs)]
