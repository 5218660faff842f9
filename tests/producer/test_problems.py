"""How invalid rows are told: a line each, a mistake most rows of a file share once."""

from __future__ import annotations

from producer.errors import RowError
from producer.problems import problem_lines

REGION = "no region in the row and no default (--region or TAGSWEEP_REGION)"


def errors(lines: range, reason: str = REGION, file: str = "a.csv") -> list[RowError]:
    return [RowError(file, line, reason) for line in lines]


def test_a_cause_most_rows_share_is_one_line_where_its_first_row_was() -> None:
    """Rows with a reason of their own keep their line and their place."""
    told = list(
        problem_lines(
            [RowError("a.csv", 2, "the key is empty"), *errors(range(3, 15))],
            {"a.csv": 20},  # 19 data lines: 12 is most of them
        )
    )
    assert told == [
        "a.csv:2: the key is empty",
        f"a.csv: 12 rows (lines 3, 4, 5, 6, 7, ...): {REGION} "
        "[one line for them all; --all-errors lists each]",
    ]


def test_a_cause_of_few_rows_or_of_a_minority_is_told_row_by_row() -> None:
    """Nine rows are not a file-wide mistake, nor are 12 of a file's 99 lines."""
    assert len(list(problem_lines(errors(range(2, 11)), {"a.csv": 11}))) == 9
    assert len(list(problem_lines(errors(range(2, 14)), {"a.csv": 100}))) == 12


def test_each_file_is_judged_on_its_own_and_all_errors_lists_every_row() -> None:
    mixed = errors(range(2, 14)) + errors(range(2, 14), file="b.csv")
    last_lines = {"a.csv": 13, "b.csv": 1000}
    told = list(problem_lines(mixed, last_lines))
    assert len(told) == 13  # a.csv's 12 in one line, b.csv's 12 (of 999) one by one
    assert told[0].startswith("a.csv: 12 rows (lines 2, 3, 4, 5, 6, ...)")
    assert len(list(problem_lines(mixed, last_lines, all_errors=True))) == 24
