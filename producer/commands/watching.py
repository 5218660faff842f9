"""The commands that look at jobs without changing them: status, report, jobs."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from producer.commands.checks import check_output
from producer.connection import job_redis
from producer.exits import ExitCode, exit_code
from producer.jobs_list import iter_jobs, render_jobs
from producer.progress import follow_job
from producer.report import write_job_report
from producer.retention import check_not_expired, expiry
from producer.status import latest_job_id, read_job, read_status, render_status
from worker.jobs import JobState
from worker.model import RowStatus

if TYPE_CHECKING:
    import redis


@click.command()
@click.argument("job_id", required=False)
@click.option("--watch", is_flag=True, help="Follow the job until it ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds, --watch.",
)
def status(job_id: str | None, watch: bool, as_json: bool, interval: float) -> ExitCode | None:
    """Progress, rate, ETA and counts per status of JOB (default: the latest job).

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    with job_redis() as client:
        job_id = job_id or latest_job_id(client)
        if watch:
            return _watch(client, job_id, as_json=as_json, interval_s=interval)
        _show_status(client, job_id, as_json=as_json)
    return None


def _watch(client: redis.Redis, job_id: str, *, as_json: bool, interval_s: float) -> ExitCode:
    final = follow_job(
        client, job_id, tty=sys.stderr.isatty(), interval_s=interval_s, plain_every_s=interval_s
    )
    click.echo(render_status(final) if not as_json else json.dumps(final.as_json()))
    return exit_code(final)


def _show_status(client: redis.Redis, job_id: str, *, as_json: bool) -> None:
    check_not_expired(client, job_id)
    current = read_status(client, job_id)
    dates = expiry(client, job_id)
    if as_json:
        click.echo(json.dumps({**current.as_json(), **dates}))
        return
    click.echo(render_status(current))
    if dates["backup_expires_at"]:
        when = dates["backup_expires_at"].replace("T", " ")
        click.echo(f"backup      expires {when} (undo before then: tagsweep undo {job_id})")


@click.command()
@click.argument("job_id")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice([s.value for s in RowStatus] + ["pending"]),
    help="Only rows in this status (pending: no result yet); repeatable.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV with a header, or one JSON object a line.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Default: stdout."
)
def report(job_id: str, only: tuple[str, ...], fmt: str, output: str | None) -> None:
    """One row per input row: its columns, then its result (`--only failed` is valid input).

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    with job_redis() as client:
        check_not_expired(client, job_id)
        job = read_job(client, job_id)
        wanted = set(only) or None
        check_output(output)
        if output:
            with open(output, "w", encoding="utf-8", newline="") as out:
                count = write_job_report(client, job, out, fmt=fmt, only=wanted)
            click.echo(f"{count:,} rows written to {output}", err=True)
        else:
            write_job_report(client, job, sys.stdout, fmt=fmt, only=wanted)


@click.command(short_help="List the jobs in this Redis, newest first.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in JobState]),
    help="Only the jobs in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def jobs(state: str | None, as_json: bool) -> None:
    """The jobs in this Redis, newest first: kind, state, rows and outcome, times, files.

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    with job_redis() as client:
        lines = list(iter_jobs(client, state=state))
    if as_json:
        click.echo(json.dumps([line.as_json() for line in lines], indent=2))
    else:
        click.echo(render_jobs(lines, state=state))
