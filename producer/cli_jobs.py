"""The job commands: submit, status, report, retry, cancel, and run (all on one machine)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from producer.connection import connect_redis
from producer.control import cancel_job, retry_job
from producer.jobspec import prepare_job
from producer.options import job_options
from producer.progress import follow_job
from producer.report import iter_report, write_report
from producer.status import latest_job_id, read_job, read_status, render_status
from producer.submit import dispatch_pending
from worker.model import RowStatus
from worker.settings import Settings


@click.command()
@job_options
@click.option("--new", is_flag=True, help="A new job even if these files were submitted before.")
def submit(new: bool, **kw: Any) -> None:
    """Check the files and queue a job for running workers; print its id on the last line.

    Submitting the same files for the same target again resumes that job: only the chunks not
    queued yet are queued (after a submission that was killed, say).
    """
    client = connect_redis(Settings.from_env().redis_url)
    job_id, _ = prepare_job(client, kw, new=new)
    from worker.tasks import dispatch_chunk

    dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(job_id)


@click.command()
@click.argument("job_id", required=False)
@click.option("--watch", is_flag=True, help="Follow the job until it ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds, --watch.")
def status(job_id: str | None, watch: bool, as_json: bool, interval: float) -> None:
    """Progress, rate, ETA and counts per status of JOB (default: the latest job)."""
    client = connect_redis(Settings.from_env().redis_url)
    job_id = job_id or latest_job_id(client)
    if watch:
        final = follow_job(client, job_id, tty=sys.stderr.isatty(), interval_s=interval)
        click.echo(render_status(final) if not as_json else json.dumps(final.as_json()))
        return
    current = read_status(client, job_id)
    click.echo(json.dumps(current.as_json()) if as_json else render_status(current))


@click.command()
@click.argument("job_id")
@click.option(
    "--only",
    multiple=True,
    type=click.Choice([s.value for s in RowStatus] + ["pending"]),
    help="Only rows in this status; repeatable.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Default: stdout."
)
def report(job_id: str, only: tuple[str, ...], fmt: str, output: str | None) -> None:
    """One row per input row: its columns, then its result (`--only failed` is valid input)."""
    client = connect_redis(Settings.from_env().redis_url)
    job = read_job(client, job_id)
    rows = iter_report(client, job)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as out:
            count = write_report(rows, out, fmt=fmt, only=set(only) or None)
        click.echo(f"{count:,} rows written to {output}", err=True)
    else:
        write_report(rows, sys.stdout, fmt=fmt, only=set(only) or None)


@click.command()
@click.argument("job_id")
@click.option(
    "--only",
    multiple=True,
    default=("failed",),
    show_default=True,
    type=click.Choice([s.value for s in RowStatus if s is not RowStatus.INVALID]),
    help="Statuses to queue again; repeatable.",
)
def retry(job_id: str, only: tuple[str, ...]) -> None:
    """Queue again the rows of JOB that ended in a status of --only (default: failed)."""
    client = connect_redis(Settings.from_env().redis_url)
    retry_job(client, job_id, set(only))
    from worker.tasks import dispatch_chunk

    queued = dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(f"{queued} chunk(s) queued again for job {job_id}")


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel JOB: rows not sent yet end `cancelled`."""
    client = connect_redis(Settings.from_env().redis_url)
    if cancel_job(client, job_id):
        click.echo(f"job {job_id} cancelled")
    else:
        click.echo(f"job {job_id} had already ended; nothing to cancel", err=True)


@click.command()
@job_options
@click.option(
    "--workers",
    "processes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Local worker processes (each with many calls in flight).",
)
@click.option(
    "--simulate",
    is_flag=True,
    help="Run against a simulator seeded from the same files, with demo credentials.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    help="Where the report goes [default: ./tagsweep-report-JOB.csv].",
)
@click.option(
    "--new", is_flag=True, help="Start a new job even if one for these files can be resumed."
)
def run(processes: int, simulate: bool, report_path: str | None, new: bool, **kw: Any) -> None:
    """Validate, submit, work and report the files on this machine; resumable.

    Without REDIS_URL a private Redis keeps the job under ./.tagsweep/. Exit code 0: every row
    deleted or not_found; 1: some rows in another final status; 2: bad input; 3: the job was
    aborted or cancelled; 130: interrupted (run the same command again to resume).
    """
    from producer.run import run_job

    sys.exit(run_job(kw, processes=processes, simulate=simulate, report=report_path, new=new))
