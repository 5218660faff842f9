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
from typing import Any

import redis

from producer.server_binary import AOF_DIR, SINGLE_AOF

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
            count = sum(_copy_key(source, target, key) for key in source.scan_iter(count=1000))
        finally:
            process.kill()
            process.wait(timeout=10)
    (directory / SINGLE_AOF).rename(directory / (SINGLE_AOF + MERGED_SUFFIX))
    return count


def _wait(client: redis.Redis, process: subprocess.Popen[bytes]) -> redis.Redis:
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            return client
        except (redis.ConnectionError, redis.BusyLoadingError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _copy_key(source: redis.Redis, target: redis.Redis, key: bytes) -> bool:
    """Copy one key, or the parts of it ``target`` lacks; whether anything was written."""
    if not target.exists(key):
        payload: Any = source.dump(key)
        if payload is None:  # expired meanwhile
            return False
        ttl_ms = max(0, int(source.pttl(key)))
        target.restore(key, ttl_ms, payload)
        return True
    kind = source.type(key)
    if kind == b"zset":
        return bool(target.zadd(key, dict(source.zscan_iter(key)), nx=True))
    if kind == b"set":
        return bool(target.sadd(key, *source.sscan_iter(key)))
    if kind == b"hash":
        added = [target.hsetnx(key, f, v) for f, v in source.hscan_iter(key)]
        return any(added)
    return False  # a string or list both hold: the main server's stands
