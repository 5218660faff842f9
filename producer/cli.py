"""The ``tagsweep`` command line (click): one sub-command per user task.

The commands live in ``producer.commands``, grouped by what they do, and ``simulator`` with the
simulator (``simulator.cli``). ``main`` is the entry point: it runs the command and ends the
process with its exit code, or with the one line and code ``exits.error_line`` gives an error.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from producer.exits import ReaderGone, end_process, end_reader_gone, error_line, is_reader_gone


@contextlib.contextmanager
def _closed_pipe_is_reader_gone() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if is_reader_gone(exc):
            raise ReaderGone from exc
        raise


class _Group(click.Group):
    """The top group, which turns a write to a closed pipe (``tagsweep report JOB | head -1``)
    into ``ReaderGone`` wherever it happens: while arguments are read (``--help``), while a
    command runs, or when what it wrote is flushed at the end. click would otherwise end the
    process with 1 itself, even outside its standalone mode.

    Each command's module is imported when the command is asked for (click's "lazily loading
    subcommands"): ``validate`` then loads neither the Redis client nor Celery (bench/validate.py).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return command(cmd_name) if cmd_name in COMMANDS else None

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _closed_pipe_is_reader_gone():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _closed_pipe_is_reader_gone():
            result = super().invoke(ctx)
            sys.stdout.flush()  # here, not at exit, where Python would print the error
        return result


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tagsweep")
def cli() -> None:
    """Remove tags from Huawei Cloud IMS images in bulk, from CSV files."""


# What `tagsweep --help` lists: one line each that fits (click cuts a docstring's first
# sentence at about 45 characters with "...").
SHORT_HELP = {
    "run": "Validate, queue, work and report on this machine.",
    "validate": "Check the files and print the plan; send nothing.",
    "submit": "Queue a job for running workers; print its id.",
    "status": "Progress, rate, ETA and counts per status of a job.",
    "report": "One line per input row with its result.",
    "retry": "Send again the rows of a job that ended failed.",
    "cancel": "Cancel a job: rows not sent yet end cancelled.",
    "plan": "Say per row what a run would change (read-only).",
    "undo": "Re-create the tags a --backup job deleted.",
    "worker": "Start a Celery worker with tagsweep's settings.",
    "simulator": "Serve the IMS + IAM simulator over HTTP.",
    "doctor": "Check an account read-only before a first job.",
}

# Where each command is: "module:attribute", imported at first use.
COMMANDS = {
    "validate": "producer.commands.validate:validate",
    "plan": "producer.commands.jobs:plan",
    "run": "producer.commands.jobs:run",
    "submit": "producer.commands.jobs:submit",
    "status": "producer.commands.watching:status",
    "report": "producer.commands.watching:report",
    "jobs": "producer.commands.watching:jobs",
    "cancel": "producer.commands.control:cancel",
    "retry": "producer.commands.control:retry",
    "undo": "producer.commands.control:undo",
    "forget": "producer.commands.control:forget",
    "select": "producer.commands.select:select",
    "doctor": "producer.commands.doctor:doctor",
    "worker": "producer.commands.operations:worker",
    "exporter": "producer.commands.operations:exporter",
    "simulator": "simulator.cli:simulator",
}


def command(name: str) -> click.Command:
    """The command ``name`` (a key of ``COMMANDS``), its module imported, its line set."""
    module, attribute = COMMANDS[name].split(":")
    found: click.Command = getattr(importlib.import_module(module), attribute)
    if name in SHORT_HELP:
        found.short_help = SHORT_HELP[name]
    return found


def main() -> None:
    """Entry point: run the command line; a command's return value is its exit code (none: 0);
    an expected error is one line and its exit code (``exits.error_line``), never a traceback;
    a reader gone (``| head -1``) ends it as SIGPIPE ends ``cat`` (``exits.end_reader_gone``)."""
    try:
        code = _command_line()
    except ReaderGone:
        end_reader_gone()
    end_process(code)


def _command_line() -> int:
    """Run the command; its exit code, or its error's after printing the error's line."""
    try:
        code = cli.main(prog_name="tagsweep", standalone_mode=False)
    except ReaderGone:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        mapped = error_line(exc)
        if mapped is None:
            raise
        line, code = mapped
        with _closed_pipe_is_reader_gone():  # `2>&1 | head -0`: no reader for the line either
            click.echo(line, err=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
