"""Errors about input files: a whole file that cannot be read, and one row that is invalid."""

from __future__ import annotations

from dataclasses import dataclass

from worker.errors import TagsweepError


class InputError(TagsweepError):
    """Raised when a whole input file cannot be used (missing, empty, no header, corrupt)."""

    def __init__(self, file: str, reason: str, *, line: int | None = None) -> None:
        super().__init__(f"{file}:{line}: {reason}" if line is not None else f"{file}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RowError:
    """One invalid input row: where it starts, why, and its fields as read."""

    file: str
    line: int
    reason: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"
