"""The ``tagsweep`` command line (click): one sub-command per user task.

The commands live in ``producer.commands``, grouped by what they do, and ``simulator`` with the
simulator (``simulator.cli``). ``main`` is the entry point: it runs the command and ends the
process with its exit code, or with the one line and code ``exits.error_line`` gives an error.
"""

from __future__ import annotations

import os

import click

from producer.commands import control, jobs, operations, select, watching
from producer.exits import end_process, error_line
from simulator.cli import simulator


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    "retry": "Queue again the rows that ended failed.",
    "cancel": "Cancel a job: rows not sent yet end cancelled.",
    "plan": "Say per row what a run would change (read-only).",
    "undo": "Re-create the tags a --backup job deleted.",
    "worker": "Start a Celery worker with tagsweep's settings.",
    "simulator": "Serve the IMS + IAM simulator over HTTP.",
}

for command in (
    jobs.validate,
    jobs.plan,
    jobs.run,
    jobs.submit,
    watching.status,
    watching.report,
    watching.jobs,
    control.cancel,
    control.retry,
    control.undo,
    control.forget,
    select.select,
    operations.worker,
    operations.exporter,
    simulator,
):
    cli.add_command(command)

for _name, _text in SHORT_HELP.items():
    cli.commands[_name].short_help = _text


def main() -> None:
    """Entry point: run the command line; a command's return value is its exit code (none: 0);
    an expected error is one line and its exit code (``exits.error_line``), never a traceback."""
    try:
        code = cli.main(prog_name="tagsweep", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        mapped = error_line(exc)
        if mapped is None:
            raise
        line, code = mapped
        click.echo(line, err=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    end_process(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
