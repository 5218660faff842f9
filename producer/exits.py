"""Exit codes of every command, and the one table that turns an error into a line and a code.

DESIGN's codes: 0 every row reached its goal; 1 some rows in another final status; 2 bad input
or usage (nothing sent); 3 the job was aborted or cancelled (or the confirmation declined); 130
interrupted (Ctrl-C). Commands raise typed errors (``producer.errors``) or return the code of a
job that ended; only ``cli.main`` ends the process, with ``error_line`` for an error.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import os
import signal
import sys
from enum import IntEnum
from typing import TYPE_CHECKING, NoReturn

import click

from producer.errors import Declined, ListingFailed, TagsweepError
from worker.jobs import JobState

if TYPE_CHECKING:
    from producer.status import JobStatus


class ExitCode(IntEnum):
    """How a command ended, as its process exit status."""

    OK = 0  # every row reached its goal (or the command did what it was asked)
    SOME_FAILED = 1  # some rows ended in another final status; select: no complete listing
    BAD_INPUT = 2  # bad input, usage or settings: nothing was sent
    ABORTED = 3  # the job was aborted or cancelled, or the confirmation declined
    INTERRUPTED = 130  # Ctrl-C, SIGTERM, SIGHUP


# The code of each error a user can cause; the first class that matches wins, and any other
# TagsweepError (and click's usage errors, OSError, Redis errors) is BAD_INPUT.
ERROR_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
    (click.Abort, ExitCode.INTERRUPTED),
    (Declined, ExitCode.ABORTED),
    (ListingFailed, ExitCode.SOME_FAILED),
)


def exit_code(status: JobStatus) -> ExitCode:
    """The code of a job that ended (``run``, ``status --watch``): 0 every row reached its goal,
    1 some rows in another final status, 3 aborted or cancelled."""
    if status.job.state in (JobState.ABORTED, JobState.CANCELLED):
        return ExitCode.ABORTED
    return ExitCode.SOME_FAILED if status.missed else ExitCode.OK


def code_of(exc: BaseException) -> ExitCode:
    """The exit code of an error a user can cause (``ERROR_CODES``; BAD_INPUT otherwise)."""
    for kind, code in ERROR_CODES:
        if isinstance(exc, kind):
            return code
    return ExitCode.BAD_INPUT


def error_line(exc: BaseException) -> tuple[str, ExitCode] | None:
    """The one line to print and the exit code for an error a user can cause; None for a bug."""
    reason = _reason(exc)
    return None if reason is None else (reason, code_of(exc))


def _reason(exc: BaseException) -> str | None:
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
    if isinstance(exc, no_args):  # a bare `tagsweep` or `tagsweep COMMAND`: the help, as is
        message: str = exc.format_message()
        return message
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        return f"{exc.ctx.command_path}: {exc.format_message()}"
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        reason = "interrupted"
    elif isinstance(exc, TagsweepError):
        reason = str(exc)
    elif isinstance(exc, click.ClickException):
        reason = exc.format_message()
    elif isinstance(exc, OSError):
        reason = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc)
    else:
        found = _redis_reason(exc)
        if found is None:
            return None
        reason = found
    return f"tagsweep: {reason}"


def _redis_reason(exc: BaseException) -> str | None:
    """A Redis error's reason, or None. Imported here: a command that never talks to Redis
    (``validate``) does not load the client (100 ms, 9 MB: bench/validate.py)."""
    import redis

    from producer.redis_check import OUT_OF_MEMORY

    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return OUT_OF_MEMORY
    if isinstance(exc, redis.RedisError):
        return "Redis: " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return None


class _Ending:
    """How the process ends. ``skip_teardown``: a command that holds a large structure and has
    nothing left to clean up (``validate``: a million rows' collection) exits without freeing
    it; freeing is 85 ms of a 2.5 s validation of 1M rows (bench/validate.py). A worker that
    stopped does the same: freeing its modules took 0.1 s on an idle machine, over 1 s on a
    busy one, and ``run`` waits for its workers to end (bench/peers/small.py)."""

    skip_teardown = False


ENDING = _Ending()


class ReaderGone(Exception):
    """Raised (by ``cli``'s group) when standard output or error was closed by its reader:
    ``tagsweep report JOB | head -1``. Not an ``OSError``: click would end the process with 1."""


def is_reader_gone(exc: BaseException) -> bool:
    """Whether ``exc`` is a write to a pipe whose reader has gone (EPIPE)."""
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


def end_reader_gone() -> NoReturn:
    """End as ``cat big | head`` ends ``cat``: killed by SIGPIPE, without a word (the shell
    sees 141, and says nothing). Python ignores SIGPIPE so that a write fails with EPIPE
    instead; by the time this runs, the error has gone up through every ``with`` (local
    workers, a private Redis stopped), so only the ending is left. Nothing buffered for stdout
    is flushed: its reader is gone."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # not reached: the signal has ended the process


def end_process(code: int) -> NoReturn:
    """End the process with ``code`` (see ``ENDING``); the ``atexit`` functions run either way."""
    if ENDING.skip_teardown:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    sys.exit(int(code))
