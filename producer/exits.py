"""Exit codes of every command, and the one table that turns an error into a line and a code.

DESIGN's codes: 0 every row reached its goal; 1 some rows in another final status; 2 bad input
or usage (nothing sent); 3 the job was aborted or cancelled (or the confirmation declined); 130
interrupted (Ctrl-C). Commands raise typed errors; only ``main`` ends the process with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from producer.redis_check import OUT_OF_MEMORY
from worker.errors import TagsweepError
from worker.jobs import JobState

if TYPE_CHECKING:
    from producer.status import JobStatus

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130


def exit_code(status: JobStatus) -> int:
    """The code of a job that ended (``run``, ``status --watch``): 0 every row reached its goal,
    1 some rows in another final status, 3 aborted or cancelled."""
    if status.job.state in (JobState.ABORTED, JobState.CANCELLED):
        return EXIT_ABORTED
    return EXIT_SOME_FAILED if status.missed else EXIT_OK


class OutputError(TagsweepError):
    """Raised when a file the command must write (a report, a plan) cannot be written."""


def check_output(path: str | None, what: str = "report") -> None:
    """Refuse, before anything is sent, a ``path`` that cannot be written (``-``: stdout)."""
    if path is None or path == "-":
        return
    target = Path(path)
    parent = target.parent
    reason: str | None
    if target.is_dir():
        reason = "is a directory"
    elif not parent.is_dir():
        reason = f"no such directory {str(parent)!r}"
    else:
        reason = _cannot_open(target)
    if reason is None:
        return
    raise OutputError(f"cannot write the {what} to {path}: {reason}")


def _cannot_open(target: Path) -> str | None:
    """Why ``target`` cannot be opened for writing, found by trying (None: it can).

    Permission bits say nothing for root, nor for /sys or /proc: only an open tells. A regular
    file is opened to append (nothing changes); a new one is created and removed again; any
    other existing path (a device, a pipe: /dev/stdout) is left alone.
    """
    try:
        if not target.exists():
            with target.open("x"):
                pass
            target.unlink()
        elif target.is_file():
            with target.open("a"):
                pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def error_line(exc: BaseException) -> tuple[str, int] | None:
    """The one line to print and the exit code for an error a user can cause; None for a bug."""
    import redis

    no_args = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
    if isinstance(exc, no_args):  # a bare `tagsweep` or `tagsweep COMMAND`: the help, as is
        return exc.format_message(), EXIT_BAD_INPUT
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        return f"{exc.ctx.command_path}: {exc.format_message()}", EXIT_BAD_INPUT
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        return "tagsweep: interrupted", EXIT_INTERRUPTED
    if isinstance(exc, TagsweepError):
        reason = str(exc)
    elif isinstance(exc, click.ClickException):
        reason = exc.format_message()
    elif isinstance(exc, OSError):
        reason = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)
    elif isinstance(exc, redis.exceptions.OutOfMemoryError):
        reason = OUT_OF_MEMORY
    elif isinstance(exc, redis.RedisError):
        reason = "Redis: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    else:
        return None
    return f"tagsweep: {reason}", EXIT_BAD_INPUT
