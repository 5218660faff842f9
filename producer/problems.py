"""How a collection's invalid rows are told: a line per row, except for a mistake the whole
file makes (50,000 rows without a region), which is one line with its count.

A cause is a (file, reason) pair: rows that break a rule the same way get the same reason
text (``producer.validation``), while reasons that name the row's own data (an image id, a
conflicting key and its first value) stay apart and are told row by row.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import click

from producer.errors import InputError, RowError

if TYPE_CHECKING:
    from producer.collect import Collection

# A cause is told once when it has at least this many rows and they are most of its file's.
SHARED_MIN_ROWS = 10
# Line numbers listed in the one line of a shared cause.
LINES_LISTED = 5
# Lines printed by one write.
ECHO_LINES = 10_000


def problem_lines(
    errors: Sequence[RowError], last_lines: Mapping[str, int], *, all_errors: bool = False
) -> Iterator[str]:
    """One line per invalid row in order; a cause shared by most rows of a file is one line,
    where its first row would be (``all_errors``: every row its own line, as before).

    ``last_lines``: each file's last physical line, so its data rows are at most that minus
    the header's.
    """
    if all_errors or len(errors) < SHARED_MIN_ROWS:
        yield from (str(error) for error in errors)
        return
    counts = Counter((error.file, error.reason) for error in errors)
    shared = {
        cause: count
        for cause, count in counts.items()
        if count >= SHARED_MIN_ROWS and 2 * count > last_lines.get(cause[0], 1) - 1
    }
    if not shared:
        yield from (str(error) for error in errors)
        return
    listed: dict[tuple[str, str], list[int]] = {cause: [] for cause in shared}
    for error in errors:
        lines = listed.get((error.file, error.reason))
        if lines is not None and len(lines) < LINES_LISTED:
            lines.append(error.line)
    for error in errors:
        cause = (error.file, error.reason)
        if cause not in shared:
            yield str(error)
        elif (lines := listed.pop(cause, None)) is not None:
            yield _shared_line(error, shared[cause], lines)


def _shared_line(first: RowError, count: int, lines: list[int]) -> str:
    shown = ", ".join(str(line) for line in lines) + (", ..." if count > len(lines) else "")
    return (
        f"{first.file}: {count:,} rows (lines {shown}): {first.reason} "
        "[one line for them all; --all-errors lists each]"
    )


def problems_of(collection: Collection, *, all_errors: bool = False) -> Iterator[str]:
    """File errors, then invalid rows: a line each, a file-wide mistake once
    (``problem_lines``; ``all_errors``: every row)."""
    yield from (str(file_error) for file_error in collection.file_errors)
    last_lines = collection.spans.last_lines
    yield from problem_lines(collection.errors, last_lines, all_errors=all_errors)


def report_problems(collection: Collection, *, all_errors: bool = False) -> None:
    """Print warnings, file errors and invalid rows on stderr, one per line (written
    ``ECHO_LINES`` at a time: an echo per line was seconds for a million invalid rows)."""
    warnings = (f"warning: {warning}" for warning in collection.warnings)
    echo_lines(itertools.chain(warnings, problems_of(collection, all_errors=all_errors)))


def echo_lines(lines: Iterable[str]) -> None:
    """Print lines on stderr, ``ECHO_LINES`` at a time."""
    remaining = iter(lines)
    while batch := list(itertools.islice(remaining, ECHO_LINES)):
        click.echo("\n".join(batch), err=True)


def no_rows(collection: Collection) -> InputError | None:
    """The error of files that hold a header and no data row: a job of 0 rows."""
    if collection.file_errors or collection.rows_read:
        return None
    names = ", ".join(span.name for span in collection.files)
    return InputError(names, "no data rows, only a header: nothing to do")
