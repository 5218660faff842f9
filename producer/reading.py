"""Reading input CSVs: stdin, gzip, BOM, the header that says where each column is, and
which file and line a row ref points at.

Rows are consumed by ``producer.grouping``'s loop from ``csv.reader`` directly: a per-row
generator here would cost a fifth of the whole pass (measured, see bench/validate.py).
"""

from __future__ import annotations

import bisect
import csv
import gc
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, cast

from producer.errors import InputError
from producer.validation import is_utf8

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

COLUMNS = ("image_id", "key", "value", "project_id", "region")
REQUIRED = ("image_id", "key")
BOM = "\ufeff"
STDIN = "-"
MAX_LINE = 1 << 20

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

    def fields(self, row: list[str]) -> tuple[str, str, str, str, str]:
        """The row's image_id, key, value, project_id and region as read ("" when absent)."""

        def pick(index: int) -> str:
            return row[index] if 0 <= index < len(row) else ""

        return (
            pick(self.image_id),
            pick(self.key),
            pick(self.value),
            pick(self.project_id).strip(),
            pick(self.region).strip(),
        )


@dataclass(frozen=True, slots=True)
class FileSpan:
    """An input file and the base added to its line numbers to make row refs."""

    name: str
    base: int


class FileSpans:
    """The files read so far, in order; a row ref (line + base) leads back to FILE:LINE."""

    def __init__(self) -> None:
        self.spans: list[FileSpan] = []
        self._bases: list[int] = []
        self._next_base = 0
        # The last physical line read of each file (its header is line 1).
        self.last_lines: dict[str, int] = {}

    def open(self, name: str) -> FileSpan:
        """The span of the next file; ``close`` it with its last line."""
        span = FileSpan(name, self._next_base)
        self.spans.append(span)
        self._bases.append(span.base)
        return span

    def close(self, span: FileSpan, last_line: int) -> None:
        self.last_lines[span.name] = last_line
        self._next_base = span.base + max(last_line, 1) + 1

    def locate(self, ref: int) -> tuple[str, int]:
        """The (file, physical line) of a row ref."""
        span = self.spans[bisect.bisect_right(self._bases, ref) - 1]
        return span.name, ref - span.base


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


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a file is read (see ``producer.grouping``)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def csv_rows(text: IO[str]) -> CsvReader:
    """A strict ``csv.reader`` over lines of at most ``MAX_LINE`` characters.

    One huge line cannot fill the memory: its pieces come out as malformed rows (each counted
    as a line). readline through iter() stays in C: a generator here costs 10%.
    """
    return csv.reader(iter(partial(text.readline, MAX_LINE), ""), strict=True)


def corrupt_gzip(name: str, exc: BaseException, *, line: int) -> InputError:
    """The error of a gzip stream that breaks after its header was read."""
    return InputError(name, f"truncated or corrupt gzip ({exc})", line=line)


def ignored_warning(name: str, layout: Layout) -> str:
    """The one warning about the header's unused columns (the first ten named)."""
    shown = ", ".join(readable(column) for column in layout.ignored[:10])
    more = len(layout.ignored) - 10
    shown += f" and {more} more" if more > 0 else ""
    return f"{name}:1: column(s) {shown} not used; ignored"


def readable(column: str) -> str:
    """A header column as shown in messages: bytes that are not UTF-8 and control characters
    as ``\\xff``, never as Python's surrogate escapes; at most 80 characters."""
    if column.isascii() and column.isprintable():
        return column
    text = column.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")[:80]
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def header_not_utf8(header: list[str]) -> str | None:
    """Why a header lacking a required column most likely does: its first column holding
    bytes that are not UTF-8 (a file saved in another encoding), or ``None``."""
    for number, column in enumerate(header, start=1):
        if not column.isascii() and not is_utf8(column):
            shown = readable(column)
            return (
                f"the header is not valid UTF-8 (column {number}: {shown}); save the file as UTF-8"
            )
    return None


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
        not_utf8 = header_not_utf8(header)
        if not_utf8:
            raise InputError(name, not_utf8, line=1)
        shown = ", ".join(readable(column) for column in header) if any(header) else "(empty)"
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
