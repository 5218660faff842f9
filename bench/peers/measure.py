"""Memory of a tool made of several processes (sampled from /proc while it runs), and the CPU
of a finished process with everything it reaped (os.wait4)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _family(roots: list[int]) -> list[int]:
    tree, found, todo = _children(), [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next(
        (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
    )


def wait_cpu_s(pid: int) -> float:
    """Wait for a child; its user + system CPU seconds, with the children it reaped."""
    _, _, usage = os.wait4(pid, 0)
    return float(usage.ru_utime + usage.ru_stime)


class TreeSampler:
    """Peak total RSS of some processes and all their descendants."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.roots: list[int] = []
        self.peak_rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._interval_s = interval_s

    def add(self, pid: int) -> None:
        self.roots.append(pid)

    def start(self) -> None:
        self._thread.start()

    def sample(self) -> None:
        total_kb = sum(_rss_kb(pid) for pid in _family(self.roots))
        self.peak_rss_mb = max(self.peak_rss_mb, total_kb / 1024)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
