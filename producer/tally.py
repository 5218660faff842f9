"""``validate``'s quick path: the plan of files whose rows are all valid, counted in column
passes in C instead of grouped row by row.

The plan of a valid file needs counts only: its rows, duplicates, images and the rows of each
image (requests). ``producer.grouping`` builds every image's group of tags, which ``submit``
and ``run`` need, at a Python loop iteration and random dict accesses per row; here a block of
lines is taken apart into columns (one ``str.split`` and a slice per column: what
``csv.reader`` reads when there is no quote), and each column checked whole:
- every row has the header's width, every value at most ``MAX_VALUE_LEN`` ASCII characters,
  every new key passes ``tag_problem``;
- the hashes of the (image, key) pairs go into one set; a pair seen before (or a clash of two
  hashes) is noted, and once the files are read the rows of the noted pairs alone are read
  again (``Counts.sort_repeats``): the same value is a duplicate, another a conflict;
- rows counted per image (``Counter.update``, in C), and every image id at the end a
  lower-case UUID (``all_image_ids``).

Anything else hands the files to the full pass (``collect``), which finds and tells the
problem: a conflicting or invalid row, a quote anywhere (a quoted field may hold a comma or a
line end), another spelling of an id, a project or region column, a blank line, stdin or gzip.
A file with a problem therefore costs this path's time up to the block that shows it on top
of the full pass.

Measured (bench/validate.py, 1,000,000 rows, the plain ``csv.reader`` pass as 1x): a valid
file 2.5-2.75x (the full pass about 4.2x); its first row repeated at the end 3.4-3.7x; an
invalid last row, the worst case, 6.8-6.9x. The set and the counter are most of the time
(random access into a million hashes and 250,000 ids). Two processes, each counting the rows
of half the images, were no faster on this 2-core VM: each ran at half speed beside the other.
"""

from __future__ import annotations

import csv
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import BinaryIO

from producer.errors import InputError
from producer.reading import STDIN, Layout, ignored_warning, read_layout
from producer.validation import MAX_VALUE_LEN, all_image_ids, tag_problem

# Bytes read at a time, cut at the last line end: about 15,000 rows of a typical file (4 MiB
# blocks were 30 MB more at the peak and no faster).
BLOCK_BYTES = 1 << 20


class NotClean(Exception):
    """Something the quick path does not judge: the full pass will."""


@dataclass(frozen=True)
class Tally:
    """What a clean set of files holds: every row valid and distinct."""

    files: tuple[str, ...]
    rows: int
    duplicates: int  # rows merged with an identical earlier row
    images: int
    requests: int
    warnings: list[str]


@dataclass(frozen=True)
class Range:
    """The data rows of a file between two byte offsets, each at a line start."""

    name: str
    layout: Layout
    start: int
    end: int


@dataclass(frozen=True)
class Columns:
    """A block's rows a column at a time (values ``""`` without a value column)."""

    ids: list[str]
    keys: list[str]
    values: list[str]

    def pair_hashes(self) -> list[int]:
        return list(map(hash, zip(self.ids, self.keys, strict=True)))


def columns(block: str, layout: Layout) -> Columns:
    """Whole lines of a file with no quote and no lone CR, checked and taken apart a column at
    a time: what ``csv.reader`` reads as ``line.split(",")``."""
    if '"' in block or "\0" in block:
        raise NotClean("a quoted field, or NUL")
    text = block.removesuffix("\n").removesuffix("\r")
    if "\r" in text and "\r" in (text := text.replace("\r\n", "\n")):
        raise NotClean("a lone CR")
    lines = text.split("\n")
    longest = max(map(len, lines))
    if longest > csv.field_size_limit():
        raise NotClean("a line over csv's field size limit")
    if set(map(str.count, lines, repeat(","))) != {layout.width - 1}:
        raise NotClean("a row of another width, or a blank line")
    fields, width = text.replace("\n", ",").split(","), layout.width
    ids, keys = fields[layout.image_id :: width], fields[layout.key :: width]
    if layout.value < 0:
        return Columns(ids, keys, [""] * len(ids))
    values = fields[layout.value :: width]
    # A line no longer than this holds no value over the limit; an ASCII block, no value
    # that is not.
    if (longest > MAX_VALUE_LEN + width - 1 or not text.isascii()) and (
        max(map(len, values)) > MAX_VALUE_LEN or not "".join(values).isascii()
    ):
        raise NotClean("a long or non-ASCII value")
    return Columns(ids, keys, values)


def read_columns(ranges: list[Range]) -> Iterator[Columns]:
    for part in ranges:
        with open(part.name, "rb") as source:
            for block in blocks(source, part.start, part.end):
                yield columns(block, part.layout)


@dataclass
class Counts:
    """The rows, pairs, images and keys of the files read so far."""

    rows: int = 0
    duplicates: int = 0
    pairs: set[int] = field(default_factory=set)  # hash((image_id, key)) of every row
    # The hashes of pairs seen twice (or of two pairs whose hashes clash): their rows are read
    # again by ``sort_repeats``.
    repeats: set[int] = field(default_factory=set)
    images: Counter[str] = field(default_factory=Counter)  # rows per image, repeats too
    keys: set[str] = field(default_factory=set)  # keys seen, each passing tag_problem

    def add(self, block: Columns) -> None:
        new_keys = set(block.keys).difference(self.keys)
        if any(tag_problem(key, "") for key in new_keys):
            raise NotClean("an invalid key")
        self.keys |= new_keys
        hashes = block.pair_hashes()
        fresh, before = set(hashes), len(self.pairs)
        # ^= drops the hashes already there: in one pass, the set grows by the block's rows
        # when none was, and shows which were when some were.
        self.pairs ^= fresh
        if len(self.pairs) - before != len(hashes):
            known = fresh.difference(self.pairs)
            self.pairs |= known
            self.repeats |= known
            self.repeats.update(h for h, n in Counter(hashes).items() if n > 1)
        self.rows += len(hashes)
        self.images.update(block.ids)

    def check_ids(self) -> None:
        if not all_image_ids(self.images):
            raise NotClean("an image id that is not a lower-case UUID")

    def sort_repeats(self, ranges: list[Range]) -> None:
        """Read again the rows of repeated pairs: a later row with the first one's value is a
        duplicate (uncounted from its image), with another value a conflict (``NotClean``:
        the full pass tells it)."""
        first: dict[tuple[str, str], str] = {}
        for block in read_columns(ranges):
            picks = list(map(self.repeats.__contains__, block.pair_hashes()))
            rows = zip(compress(block.ids, picks), compress(block.keys, picks), strict=True)
            for pair, value in zip(rows, compress(block.values, picks), strict=True):
                if pair not in first:
                    first[pair] = value
                elif first[pair] != value:
                    raise NotClean("a conflicting row")
                else:
                    self.duplicates += 1
                    self.images[pair[0]] -= 1


def blocks(source: BinaryIO, start: int, end: int) -> Iterator[str]:
    """The text between two offsets, ``BLOCK_BYTES`` at a time, each block cut at a line end."""
    source.seek(start)
    left, carry = end - start, b""
    while left > 0 and (data := source.read(min(BLOCK_BYTES, left))):
        left -= len(data)
        data = carry + data
        cut = data.rfind(b"\n") + 1 if left > 0 else len(data)
        if cut == 0:
            raise NotClean("a line longer than a block")
        carry = data[cut:]
        yield data[:cut].decode("utf-8", "surrogateescape")


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


def quick_tally(
    files: list[str], *, default_project_id: str | None, default_region: str | None, max_tags: int
) -> Tally | None:
    """The counts of files whose every row is valid and distinct, or ``None``: then the full
    pass (``producer.collect``) must read them."""
    scoped, counted = bool(default_project_id and default_region), Counts()
    try:
        ranges = [data_range(name, scoped_by_default=scoped) for name in files]
        for block in read_columns(ranges):
            counted.add(block)
        counted.check_ids()
        if counted.repeats:
            counted.sort_repeats(ranges)
    except NotClean:
        return None
    if not counted.rows:
        return None  # the full pass tells a file with no data row
    requests = sum(-(-count // max_tags) for count in counted.images.values())
    warnings = [ignored_warning(r.name, r.layout) for r in ranges if r.layout.ignored]
    return Tally(
        tuple(files), counted.rows, counted.duplicates, len(counted.images), requests, warnings
    )
