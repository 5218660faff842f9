"""Folding a stray 6.2 append-only file into a 7.x private Redis, so no job stays hidden.

Before a folder was pinned to one ``redis-server`` (``server_binary``), a 6.2 server could open
a folder a 7.x server had made: it cannot read ``appendonlydir/``, so it started empty and kept
its own jobs in ``appendonly.aof`` beside it, which 7.x then ignores. When a 7.x server starts
over such a folder, the stray file is loaded by a second, short-lived server of the same binary
(which converts it) and its keys are copied in: a key the main server lacks is copied whole
(DUMP/RESTORE); one both hold (the job index, say) gets the members or fields it lacks. The file
is then renamed ``appendonly.aof.merged`` so it is folded in once.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from producer.server_binary import AOF_DIR, SINGLE_AOF
from producer.store.server import answers, copy_keys

MERGED_SUFFIX = ".merged"


def has_stray_aof(directory: Path) -> bool:
    """Whether ``directory`` holds both layouts (a 6.2 file beside a 7.x folder)."""
    return (directory / AOF_DIR).is_dir() and (directory / SINGLE_AOF).is_file()


def fold_stray_aof(directory: Path, binary: str, target: redis.Redis, port: int) -> int:
    """Copy the stray file's keys into ``target``; return how many keys were added or merged."""
    with tempfile.TemporaryDirectory(prefix="tagsweep-aof-") as scratch:
        shutil.copy(directory / SINGLE_AOF, Path(scratch) / SINGLE_AOF)
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", scratch]
        command += ["--appendonly", "yes", "--save", ""]
        # S603: the folder's own redis-server binary over a scratch copy of its stray file.
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        try:
            source = _wait(redis.Redis(port=port), process)
            count = copy_keys(source, target)
        finally:
            process.kill()
            process.wait(timeout=10)
    (directory / SINGLE_AOF).rename(directory / (SINGLE_AOF + MERGED_SUFFIX))
    return count


def _wait(client: redis.Redis, process: subprocess.Popen[bytes]) -> redis.Redis:
    deadline = time.monotonic() + 30
    while True:
        try:
            answers(client)
            return client
        except (redis.ConnectionError, redis.BusyLoadingError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
