"""``validate``'s quick path: the plan and the problems of files counted in column passes in C
instead of grouped row by row.

The plan needs counts only: rows, duplicates, invalid rows, images and the rows of each image
(requests). ``producer.grouping`` builds every image's group of tags, which ``submit`` and
``run`` need, at a Python loop iteration and random dict accesses per row. Here
(``producer.blockread``) a block of lines is taken apart into columns (one ``str.split`` and a
slice per column) and each column checked whole; a block where a row breaks a width, key or
value rule is judged line by line instead, as the full pass would. Then:
- the hashes of the valid rows' (image, key) pairs go into one set; a pair seen before (or a
  clash of two hashes) is noted, and once the files are read the rows of the noted pairs alone
  are read again (``Counts.sort_repeats``): the same value is a duplicate, another a conflict;
- rows counted per image (``Counter.update``, in C), and every image id at the end a
  lower-case UUID (``all_image_ids``).

What it does not judge goes to the full pass (``collect``), which reads the files again: an
image id that is not a lower-case UUID (another spelling is an alias there), a quote anywhere
(a quoted field may hold a comma or a line end), a project or region column, stdin or gzip.
Such a file costs this path's time up to the block that shows it on top of the full pass.

Measured (bench/validate.py, 1,000,000 rows, the plain ``csv.reader`` pass as 1x): a valid
file 2.5-2.8x (the full pass about 4.2x), with an invalid last row 2.8x, with its first row
repeated at the end 3.4-4.3x (the second read). The set and the counter are most of the time
(random access into a million hashes and 250,000 ids).
Two processes, each counting the rows of half the images, were no faster on this 2-core VM:
each ran at half speed beside the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress

from producer.blockread import Block, Columns, NotClean, Range, blocks, data_range
from producer.errors import RowError, sort_in_file_order
from producer.reading import ignored_warning
from producer.validation import all_image_ids, conflict_problem, tag_problem


@dataclass(frozen=True)
class Tally:
    """What a set of files holds, and their invalid rows, as the full pass would tell them."""

    files: tuple[str, ...]
    rows_read: int
    duplicates: int  # rows merged with an identical earlier row
    images: int
    requests: int
    warnings: list[str]
    errors: list[RowError]
    last_lines: dict[str, int]  # each file's last physical line

    @property
    def valid(self) -> int:
        return self.rows_read - self.duplicates - len(self.errors)


@dataclass
class Counts:
    """The rows, pairs, images, keys and invalid rows of the files read so far."""

    scope: tuple[str, str]  # the default (project, region) every row takes
    rows: int = 0  # rows that passed the row rules (a conflict is found later)
    rejected: int = 0  # rows that did not
    duplicates: int = 0
    pairs: set[int] = field(default_factory=set)  # hash((image_id, key)) of those rows
    # The hashes of pairs seen twice (or of two pairs whose hashes clash): their rows are read
    # again by ``sort_repeats``.
    repeats: set[int] = field(default_factory=set)
    images: Counter[str] = field(default_factory=Counter)  # rows per image, repeats too
    keys: set[str] = field(default_factory=set)  # keys seen in rows that passed
    errors: list[RowError] = field(default_factory=list)

    def add(self, part: Range, block: Block) -> None:
        columns = block.columns()
        new_keys = set(columns.keys).difference(self.keys) if columns else set()
        if columns is None or any(tag_problem(key, "") for key in new_keys):
            columns = block.rows()
            new_keys = set(columns.keys).difference(self.keys)
            self.rejected += len(columns.rejected)
            for rejected in columns.rejected:
                fields = part.layout.fields(rejected.row)
                self.reject(part.name, rejected.line, rejected.reason, fields[:3])
        self.keys |= new_keys
        fresh, before = set(columns.pair_hashes()), len(self.pairs)
        # ^= drops the hashes already there: in one pass, the set grows by the block's rows
        # when none was, and shows which were when some were.
        self.pairs ^= fresh
        if len(self.pairs) - before != len(columns.ids):
            known = fresh.difference(self.pairs)
            self.pairs |= known
            self.repeats |= known
            if len(fresh) != len(columns.ids):  # a pair twice in this block
                counted = Counter(columns.pair_hashes())
                self.repeats.update(h for h, n in counted.items() if n > 1)
        self.rows += len(columns.ids)
        self.images.update(columns.ids)

    def reject(self, name: str, line: int, reason: str, fields: tuple[str, ...]) -> None:
        self.errors.append(RowError(name, line, reason, (*fields, *self.scope)))

    def check_ids(self) -> None:
        if not all_image_ids(self.images):
            raise NotClean("an image id that is not a lower-case UUID")

    def sort_repeats(self, ranges: list[Range]) -> None:
        """Read again the valid rows of repeated pairs: a later row with the first one's value
        is a duplicate, with another value a conflict (the first stands); either way it is
        uncounted from its image."""
        first: dict[tuple[str, str], tuple[str, int, int]] = {}  # value, range, line
        for index, part in enumerate(ranges):
            for columns in read_columns(part):
                picks = list(map(self.repeats.__contains__, columns.pair_hashes()))
                rows = (columns.ids, columns.keys, columns.values, columns.lines())
                for image_id, key, value, line in zip(
                    *(compress(column, picks) for column in rows), strict=True
                ):
                    earlier = first.setdefault((image_id, key), (value, index, line))
                    if earlier[1:] == (index, line):
                        continue
                    self.images[image_id] -= 1
                    if earlier[0] == value:
                        self.duplicates += 1
                        continue
                    first_at = (ranges[earlier[1]].name, earlier[2])
                    problem = conflict_problem(key, earlier[0], first_at)
                    self.reject(part.name, line, problem, (image_id, key, value))


def read_columns(part: Range) -> Iterator[Columns]:
    """A range's valid rows, block by block (the second read: the row rules already told)."""
    for block in blocks(part):
        yield block.columns() or block.rows()


def quick_tally(
    files: list[str], *, default_project_id: str | None, default_region: str | None, max_tags: int
) -> Tally | None:
    """The counts and invalid rows of the files, or ``None``: then the full pass
    (``producer.collect``) must read them."""
    scoped = bool(default_project_id and default_region)
    counted = Counts((default_project_id or "", default_region or ""))
    last_lines: dict[str, int] = {}
    try:
        ranges = [data_range(name, scoped_by_default=scoped) for name in files]
        for part in ranges:
            last_lines[part.name] = 1
            for block in blocks(part):
                counted.add(part, block)
                last_lines[part.name] = block.last_line
        counted.check_ids()
        if counted.repeats:
            counted.sort_repeats(ranges)
    except NotClean:
        return None
    rows_read = counted.rows + counted.rejected
    if not rows_read:
        return None  # the full pass tells a file with no data row
    sort_in_file_order(counted.errors, files)
    requests = sum(-(-count // max_tags) for count in counted.images.values())
    warnings = [ignored_warning(r.name, r.layout) for r in ranges if r.layout.ignored]
    return Tally(
        tuple(files),
        rows_read,
        counted.duplicates,
        len(counted.images),
        requests,
        warnings,
        counted.errors,
        last_lines,
    )
