"""``validate``'s quick path: the plan of files whose rows are all valid and all distinct,
counted in column passes in C instead of grouped row by row.

The plan of a clean file needs counts only: its rows, its images and the rows of each image
(requests). ``producer.grouping`` builds every image's group of tags, which ``submit`` and
``run`` need, at a Python loop iteration and random dict accesses per row; here a block of
lines is taken apart into columns (one ``str.split`` and a slice per column: what
``csv.reader`` reads when there is no quote), and each column checked whole:
- every row has the header's width, every value at most ``MAX_VALUE_LEN`` ASCII characters,
  every new key passes ``tag_problem``;
- no (image, key) twice: the hashes of the pairs go into one set, which must grow by the
  block's rows (a clash of two hashes only sends the file to the full pass);
- rows counted per image (``Counter.update``, in C), and every image id at the end a
  lower-case UUID (``all_image_ids``).

Anything else hands the files to the full pass (``collect``), which finds and tells the
problem: a duplicate or conflicting row, an invalid one, a quote anywhere (a quoted field may
hold a comma or a line end), another spelling of an id, a project or region column, a blank
line, stdin or gzip. A file with a problem therefore costs this path's time up to the block
that shows it on top of the full pass.

Measured (bench/validate.py, 1,000,000 rows): a clean file 2.5x a plain ``csv.reader`` pass
(the full pass 4.2x); a repeat in its last row 5.9x. The set and the counter are most of the
time (random access into a million hashes and 250,000 ids). Two processes, each counting the
rows of half the images, were no faster on this 2-core VM: each ran at half speed beside the
other.
"""

from __future__ import annotations

import csv
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
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


@dataclass
class Counts:
    """The rows, pairs, images and keys of the files read so far."""

    rows: int = 0
    pairs: set[int] = field(default_factory=set)  # hash((image_id, key)) of every row
    images: Counter[str] = field(default_factory=Counter)  # rows per image
    keys: set[str] = field(default_factory=set)  # keys seen, each passing tag_problem

    def add_range(self, part: Range) -> None:
        with open(part.name, "rb") as source:
            for block in blocks(source, part.start, part.end):
                self.add_block(block, part.layout)

    def add_block(self, block: str, layout: Layout) -> None:
        """Whole lines of a file with no quote and no lone CR: what ``csv.reader`` reads as
        ``line.split(",")``, taken apart a column at a time."""
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
        # A line no longer than this holds no value over the limit; an ASCII block, no
        # value that is not.
        if layout.value >= 0 and (longest > MAX_VALUE_LEN + width - 1 or not text.isascii()):
            values = fields[layout.value :: width]
            if max(map(len, values)) > MAX_VALUE_LEN or not "".join(values).isascii():
                raise NotClean("a long or non-ASCII value")
        self.add_columns(fields[layout.image_id :: width], fields[layout.key :: width])

    def add_columns(self, ids: list[str], keys: list[str]) -> None:
        new_keys = set(keys).difference(self.keys)
        if any(tag_problem(key, "") for key in new_keys):
            raise NotClean("an invalid key")
        self.keys |= new_keys
        before = len(self.pairs)
        self.pairs.update(map(hash, zip(ids, keys, strict=True)))
        if len(self.pairs) - before != len(ids):
            raise NotClean("an (image, key) pair twice")
        self.rows += len(ids)
        self.images.update(ids)

    def check_ids(self) -> None:
        if not all_image_ids(self.images):
            raise NotClean("an image id that is not a lower-case UUID")


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
        for part in ranges:
            counted.add_range(part)
        counted.check_ids()
    except NotClean:
        return None
    if not counted.rows:
        return None  # the full pass tells a file with no data row
    requests = sum(-(-count // max_tags) for count in counted.images.values())
    warnings = [ignored_warning(r.name, r.layout) for r in ranges if r.layout.ignored]
    return Tally(tuple(files), counted.rows, len(counted.images), requests, warnings)
