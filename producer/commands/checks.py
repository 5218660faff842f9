"""Refusals before anything starts: an input file that cannot be read, an output that cannot be
written. A command checks its files this way before it starts Redis, workers or calls."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from producer.errors import InputError, OutputError
from producer.reading import GZIP_ERRORS, STDIN, csv_rows, open_text, read_layout


def check_files(files: Iterable[str]) -> None:
    """Refuse a missing or unreadable input file (or a directory) before anything starts."""
    for name in files:
        if name == "-":
            continue
        try:
            with open(name, "rb"):
                pass
        except OSError as exc:
            raise InputError(name, f"cannot open: {exc.strerror or exc}") from None


def check_has_rows(files: tuple[str, ...]) -> None:
    """Refuse files that hold a header and no data row (a job of 0 rows) before anything
    starts. Only the first data row of each file is read; a file the full read will refuse
    (no header, corrupt) and stdin are left to it."""
    if STDIN in files or any(_has_row(name) for name in files):
        return
    raise InputError(", ".join(files), "no data rows, only a header: nothing to do")


def _has_row(name: str) -> bool:
    """Whether a file has a data row after its header (or cannot be judged here)."""
    try:
        with open_text(name) as text:
            reader = csv_rows(text)
            read_layout(reader, name)
            return any(row for row in reader)
    except (InputError, csv.Error, UnicodeError, *GZIP_ERRORS):
        return True  # told by the full read, with its line


def check_output(path: str | None, what: str = "report") -> None:
    """Refuse, before anything is sent, a ``path`` that cannot be written (``-``: stdout)."""
    if path is None or path == "-":
        return
    target = Path(path)
    parent = target.parent
    reason: str | None
    if target.is_dir():
        reason = "is a directory"
    elif not parent.is_dir():
        reason = f"no such directory {str(parent)!r}"
    else:
        reason = _cannot_open(target)
    if reason is None:
        return
    raise OutputError(f"cannot write the {what} to {path}: {reason}")


def _cannot_open(target: Path) -> str | None:
    """Why ``target`` cannot be opened for writing, found by trying (None: it can).

    Permission bits say nothing for root, nor for /sys or /proc: only an open tells. A regular
    file is opened to append (nothing changes); a new one is created and removed again; any
    other existing path (a device, a pipe: /dev/stdout) is left alone.
    """
    try:
        if not target.exists():
            with target.open("x"):
                pass
            target.unlink()
        elif target.is_file():
            with target.open("a"):
                pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
