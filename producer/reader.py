"""Opening input CSVs: stdin, gzip, BOM, and the header that says where each column is.

Rows are read by ``producer.collect`` with ``csv.reader`` directly: a per-row generator here
would cost a fifth of the whole pass (measured, see bench/validate.py).
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, cast

from producer.errors import InputError

COLUMNS = ("image_id", "key", "value", "project_id", "region")
REQUIRED = ("image_id", "key")
BOM = "\ufeff"
STDIN = "-"

# What a broken gzip stream raises while it is read.
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


@dataclass(frozen=True)
class Layout:
    """Where tagsweep's columns are in a file's rows (-1: absent) and what it ignores."""

    width: int
    image_id: int
    key: int
    value: int
    project_id: int
    region: int
    ignored: tuple[str, ...]


@contextmanager
def open_text(name: str) -> Iterator[IO[str]]:
    """Open a file name (``-`` for stdin, ``.gz`` decompressed) as text for ``csv.reader``.

    Bytes that are not UTF-8 are kept as surrogate escapes so that the row holding them can be
    reported with its line number instead of failing the whole file.
    """
    try:
        if name == STDIN:
            raw: IO[bytes] = sys.stdin.buffer
        elif name.endswith(".gz"):
            raw = cast(IO[bytes], gzip.open(name, "rb"))  # noqa: SIM115 - closed with the wrapper
        else:
            raw = open(name, "rb")  # noqa: SIM115 - closed below, with the wrapper
    except OSError as exc:
        raise InputError(name, f"cannot open: {exc.strerror or exc}") from None
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        yield text
    finally:
        if name == STDIN:
            text.detach()
        else:
            text.close()


def read_layout(reader: Iterator[list[str]], name: str) -> Layout:
    """Read the header row and find the columns; a file without a usable header is an error."""
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(name, "empty file: a header row is required") from None
    except csv.Error as exc:
        raise InputError(name, f"unreadable header: {exc}", line=1) from None
    except GZIP_ERRORS as exc:
        raise InputError(name, f"not a readable gzip file ({exc})") from None
    names = [column.strip().lower() for column in header]
    if names and names[0].startswith(BOM):
        names[0] = names[0][len(BOM) :].strip()
    seen: set[str] = set()
    for column in names:
        if column in seen and column in COLUMNS:
            raise InputError(name, f"column {column!r} appears twice in the header", line=1)
        seen.add(column)
    missing = [column for column in REQUIRED if column not in names]
    if missing:
        shown = ", ".join(header) if any(header) else "(empty)"
        raise InputError(
            name,
            f"missing required column(s) {', '.join(missing)}; the header is: {shown}",
            line=1,
        )
    return Layout(
        width=len(names),
        ignored=tuple(column for column in names if column not in COLUMNS),
        **{column: names.index(column) if column in names else -1 for column in COLUMNS},
    )
