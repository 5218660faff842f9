"""Files read for ``producer.tally`` a block of lines at a time, each block taken apart into
columns in C, or line by line where it holds a row that breaks a rule.

Only files ``csv.reader`` would read as ``line.split(",")`` are taken: no quote, no lone CR,
no NUL, no line over csv's field size limit (``NotClean`` otherwise: the full pass reads them).
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat

from producer.errors import InputError
from producer.reading import STDIN, Layout, read_layout
from producer.validation import MAX_VALUE_LEN, tag_problem, width_problem

# Bytes read at a time, cut at the last line end: about 15,000 rows of a typical file (4 MiB
# blocks were 30 MB more at the peak and no faster).
BLOCK_BYTES = 1 << 20


class NotClean(Exception):
    """Something the quick path does not judge: the full pass will."""


@dataclass(frozen=True)
class Range:
    """The data rows of a file between two byte offsets, each at a line start."""

    name: str
    layout: Layout
    start: int
    end: int


@dataclass(frozen=True)
class Rejected:
    """A row that breaks a rule, at its physical line."""

    line: int
    reason: str
    row: list[str]


@dataclass(frozen=True)
class Columns:
    """A block's rows that pass the row rules, a column at a time (values ``""`` without a
    value column), and the rows that do not."""

    ids: list[str]
    keys: list[str]
    values: list[str]
    first_line: int
    numbers: list[int] | None = None  # each row's line, when not first_line onwards
    rejected: list[Rejected] = field(default_factory=list)

    def pair_hashes(self) -> Iterator[int]:
        return map(hash, zip(self.ids, self.keys, strict=True))

    def lines(self) -> list[int] | range:
        """Each row's physical line."""
        if self.numbers is not None:
            return self.numbers
        return range(self.first_line, self.first_line + len(self.ids))


@dataclass(frozen=True)
class Block:
    """Whole lines of one file, from ``first_line`` on."""

    lines: list[str]
    text: str  # the lines joined by "\n"
    layout: Layout
    first_line: int
    longest: int  # the longest line's length

    @classmethod
    def of(cls, block: str, layout: Layout, first_line: int) -> Block:
        if '"' in block or "\0" in block:
            raise NotClean("a quoted field, or NUL")
        text = block.removesuffix("\n").removesuffix("\r")
        if "\r" in text and "\r" in (text := text.replace("\r\n", "\n")):
            raise NotClean("a lone CR")
        lines = text.split("\n")
        if (longest := max(map(len, lines))) > csv.field_size_limit():
            raise NotClean("a line over csv's field size limit")
        return cls(lines, text, layout, first_line, longest)

    def columns(self) -> Columns | None:
        """The block taken apart in C, or ``None`` when a row breaks a width or value rule
        (keys are for the caller: it knows the valid ones)."""
        layout, width = self.layout, self.layout.width
        if set(map(str.count, self.lines, repeat(","))) != {width - 1}:
            return None  # a row of another width, or a blank line
        fields = self.text.replace("\n", ",").split(",")
        ids, keys = fields[layout.image_id :: width], fields[layout.key :: width]
        if layout.value < 0:
            return Columns(ids, keys, [""] * len(ids), self.first_line)
        values = fields[layout.value :: width]
        # A line no longer than this holds no value over the limit; an ASCII block, no value
        # that is not.
        if (self.longest > MAX_VALUE_LEN + width - 1 or not self.text.isascii()) and (
            max(map(len, values)) > MAX_VALUE_LEN or not "".join(values).isascii()
        ):
            return None
        return Columns(ids, keys, values, self.first_line)

    def rows(self) -> Columns:
        """The block line by line, as ``producer.grouping``'s loop judges a row: a blank line
        is no record, a row of another width or with a bad key or value is rejected."""
        layout, width = self.layout, self.layout.width
        ids, keys, values, numbers, rejected = [], [], [], [], []
        for number, line in enumerate(self.lines, self.first_line):
            if not line:
                continue
            row = line.split(",")
            if len(row) != width:
                rejected.append(Rejected(number, width_problem(len(row), width), row))
                continue
            key, value = row[layout.key], row[layout.value] if layout.value >= 0 else ""
            if problem := tag_problem(key, value):
                rejected.append(Rejected(number, problem, row))
                continue
            ids.append(row[layout.image_id])
            keys.append(key)
            values.append(value)
            numbers.append(number)
        return Columns(ids, keys, values, self.first_line, numbers, rejected)

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1


def blocks(part: Range) -> Iterator[Block]:
    """A range ``BLOCK_BYTES`` at a time, each block cut at a line end."""
    with open(part.name, "rb") as source:
        source.seek(part.start)
        left, carry, line = part.end - part.start, b"", 2  # the header is line 1
        while left > 0 and (data := source.read(min(BLOCK_BYTES, left))):
            left -= len(data)
            data = carry + data
            cut = data.rfind(b"\n") + 1 if left > 0 else len(data)
            if cut == 0:
                raise NotClean("a line longer than a block")
            carry = data[cut:]
            yield Block.of(data[:cut].decode("utf-8", "surrogateescape"), part.layout, line)
            line += data.count(b"\n", 0, cut)


def data_range(name: str, *, scoped_by_default: bool) -> Range:
    """A file's data rows, after its header; a file the quick path does not take is
    ``NotClean`` (the full pass reads it, and says what is wrong with it)."""
    if name == STDIN or name.endswith(".gz"):
        raise NotClean("stdin or gzip")
    try:
        with open(name, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise NotClean("not a regular file")
            header = source.readline(BLOCK_BYTES).decode("utf-8", "surrogateescape")
            start, end = source.tell(), os.fstat(source.fileno()).st_size
        layout = read_layout(csv.reader([header], strict=True), name)
    except (OSError, InputError, csv.Error):
        raise NotClean("the header") from None
    if '"' in header or layout.project_id >= 0 or layout.region >= 0 or not scoped_by_default:
        raise NotClean("a quoted header, a scope column or no default scope")
    return Range(name, layout, start, end)
