"""Every error the command line raises on purpose, in one hierarchy under ``TagsweepError``.

Each names what went wrong in one line (``str(exc)``), never a secret; ``producer.exits`` turns
it into that line and an exit code. The roots (``TagsweepError``, ``ConfigError``) are the
workers' (``worker.errors``): a setting refused on either side reads the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.errors import ConfigError, TagsweepError

__all__ = [
    "ConfigError",
    "Declined",
    "ForgetRefused",
    "InputError",
    "InputRejected",
    "JobExpired",
    "JobNotFound",
    "JobStateError",
    "ListingFailed",
    "OutputError",
    "RowError",
    "SelectionRefused",
    "TagsweepError",
    "UndoRefused",
    "WorkersGone",
]


class InputError(TagsweepError):
    """Raised when a whole input file cannot be used (missing, empty, no header, corrupt)."""

    def __init__(self, file: str, reason: str, *, line: int | None = None) -> None:
        super().__init__(f"{file}:{line}: {reason}" if line is not None else f"{file}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason


class InputRejected(TagsweepError):
    """Raised when the files hold problems (already printed) and nothing may be queued.
    ``hint``: say that --skip-invalid would queue the valid rows (only invalid rows, and the
    flag not given)."""

    def __init__(self, problems: int, *, hint: bool = True) -> None:
        advice = " (--skip-invalid queues the valid rows)" if hint else ""
        super().__init__(f"nothing queued: {problems:,} problem(s) above{advice}")
        self.problems = problems


class OutputError(TagsweepError):
    """Raised when a file the command must write (a report, a plan) cannot be written."""


class Declined(TagsweepError):
    """Raised when the person at the terminal answers no to a confirmation; ``str`` says what
    was therefore not done ("nothing queued")."""


class SelectionRefused(ConfigError):
    """Raised when select's options make no valid query or key choice (before any call)."""


class ListingFailed(TagsweepError):
    """Raised when the listing cannot be completed: a call failed for good, or it never
    settled; nothing of it may be used."""


class JobNotFound(TagsweepError):
    """Raised when a job id (or "the latest job") names no job in this Redis."""


class JobExpired(TagsweepError):
    """Raised when a job id names a job whose data has expired (or was forgotten)."""


class JobStateError(TagsweepError):
    """Raised when a job is not in a state that allows the command."""


class ForgetRefused(TagsweepError):
    """Raised when a job cannot be forgotten now (it is queued or running)."""


class UndoRefused(TagsweepError):
    """Raised when a job cannot be undone; the message says why and what to do."""


class SimulatedJob(TagsweepError):
    """Raised when undo or retry is asked of a ``run --simulate`` job: its simulator ended with
    the run, and nothing was deleted in the cloud. ``advice``: what to do instead."""

    def __init__(self, job_id: str, advice: str) -> None:
        super().__init__(
            f"job {job_id} ran with --simulate, against a simulator that ended with the run: "
            + advice
        )


class WorkersGone(TagsweepError):
    """Raised when every local worker process has exited while the job still runs."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One invalid input row: where it starts, why, and its fields as read. Not raised: rows
    are collected (``Collection.errors``) and reported together."""

    file: str
    line: int
    reason: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def sort_in_file_order(errors: list[RowError], files: Sequence[str]) -> None:
    """Sort invalid rows by file, in the order the files were given, then by line (a file
    given twice sorts where it was given last)."""
    order = {name: index for index, name in enumerate(files)}
    errors.sort(key=lambda error: (order[error.file], error.line))
