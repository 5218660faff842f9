"""The job commands: submit, status, report, retry, cancel, and run (all on one machine)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from producer.connection import connect_redis, job_redis
from producer.control import cancel_job, retry_job
from producer.exits import check_output, exit_code
from producer.jobspec import check_files, options_from, prepare_job
from producer.options import job_options, report_option, safety_options
from producer.progress import follow_job
from producer.redis_check import allow_eviction_option, check_redis
from producer.report import write_job_report
from producer.resume import take_up
from producer.retention import check_not_expired, expiry
from producer.status import latest_job_id, read_job, read_status, render_status
from producer.submit import dispatch_pending
from worker.jobs import Mode
from worker.model import RowStatus
from worker.settings import Settings

if TYPE_CHECKING:
    import redis


@click.command()
@job_options
@safety_options
@allow_eviction_option
@click.option("--new", is_flag=True, help="A new job even if these files were submitted before.")
def submit(new: bool, allow_eviction: bool, **kw: Any) -> None:
    """Check the files and queue a job for running workers; print its id on the last line.

    Submitting the same files for the same target again resumes that job: only the chunks not
    queued yet are queued (after a submission that was killed, say).
    """
    options_from(kw)  # refuses bad combinations before anything is read
    check_files(list(kw["files"]))
    redis_url = Settings.from_env().redis_url
    check_redis(redis_url, allow_eviction=allow_eviction)
    client = connect_redis(redis_url)
    job_id, resumed = prepare_job(client, kw, new=new)
    if resumed:
        take_up(client, job_id)  # an aborted or cancelled job: its unsent rows again
    queue_for_workers(client, job_id)


def queue_for_workers(client: redis.Redis, job_id: str) -> None:
    """Queue the job's chunks not queued yet for the running workers; print its id last."""
    from worker.tasks import dispatch_chunk

    dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(job_id)


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
def status(job_id: str | None, watch: bool, as_json: bool, interval: float) -> None:
    """Progress, rate, ETA and counts per status of JOB (default: the latest job)."""
    with job_redis() as client:
        _status(client, job_id, watch=watch, as_json=as_json, interval=interval)


def _status(
    client: redis.Redis, job_id: str | None, *, watch: bool, as_json: bool, interval: float
) -> None:
    job_id = job_id or latest_job_id(client)
    if watch:
        final = follow_job(
            client, job_id, tty=sys.stderr.isatty(), interval_s=interval, plain_every_s=interval
        )
        click.echo(render_status(final) if not as_json else json.dumps(final.as_json()))
        sys.exit(exit_code(final))
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
    """One row per input row: its columns, then its result (`--only failed` is valid input)."""
    with job_redis() as client:
        _report(client, job_id, only, fmt, output)


def _report(
    client: redis.Redis, job_id: str, only: tuple[str, ...], fmt: str, output: str | None
) -> None:
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
    check_not_expired(client, job_id)
    rows = retry_job(client, job_id, set(only))
    from worker.tasks import dispatch_chunk

    queued = dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(f"{rows:,} row(s) in {queued} chunk(s) queued again for job {job_id}")


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel JOB: rows not sent yet end `cancelled`."""
    with job_redis() as client:
        cancelled = cancel_job(client, job_id)
    if cancelled:
        click.echo(f"job {job_id} cancelled")
    else:
        click.echo(f"job {job_id} had already ended; nothing to cancel", err=True)


workers_option = click.option(
    "--workers",
    "processes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Local worker processes (each with many calls in flight).",
)
simulate_option = click.option(
    "--simulate",
    is_flag=True,
    help="Work against a simulator seeded from the same files, with demo credentials.",
)


@click.command()
@job_options
@safety_options
@workers_option
@simulate_option
@allow_eviction_option
@report_option("./tagsweep-report-JOB.csv")
@click.option(
    "--new", is_flag=True, help="Start a new job even if one for these files can be resumed."
)
def run(processes: int, simulate: bool, report_path: str | None, new: bool, **kw: Any) -> None:
    """Validate, submit, work and report the files on this machine; resumable.

    Without REDIS_URL a private Redis keeps the job under ./.tagsweep/. Exit code 0: every row
    deleted or not_found; 1: some rows in another final status; 2: bad input; 3: the job was
    aborted or cancelled (or not confirmed); 130: interrupted (run the same command again to
    resume). With --backup, `tagsweep undo JOB` can put the deleted tags back.
    """
    from producer.run import run_job

    options_from(kw)
    check_files(list(kw["files"]))
    check_output(report_path or "tagsweep-report-JOB.csv")
    sys.exit(run_job(kw, processes=processes, simulate=simulate, report=report_path, new=new))


@click.command(short_help="Say per row what a run would change (read-only).")
@job_options
@workers_option
@simulate_option
@report_option("stdout", default="-")
def plan(processes: int, simulate: bool, report_path: str, **kw: Any) -> None:
    """Read the live tags of the files' images and say, per row, what a run would do.

    Each row ends would_delete (key present, same value), value_differs (present with another
    value, shown in current_value), absent, or image_not_found. Read-only: the reads go
    through local workers under the same rate limit and retries as a run. Totals go to stderr.
    Exit code 0 when every row got an answer, 1 otherwise, 2 on bad input.
    """
    from producer.run import run_job

    kw["mode"] = Mode.PLAN.value
    options_from(kw)
    check_files(list(kw["files"]))
    check_output(report_path, "plan")
    sys.exit(run_job(kw, processes=processes, simulate=simulate, report=report_path, new=True))


@click.command(short_help="Re-create the tags a --backup job deleted.")
@click.argument("job_id")
@workers_option
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    help="Requests/s for the undo, all workers together [default: the job's own rate].",
)
@report_option("./tagsweep-report-UNDOJOB.csv")
@click.option(
    "--queue-only",
    is_flag=True,
    help="Only queue the undo job for workers already running (like submit); print its id.",
)
def undo(
    job_id: str, processes: int, rate: float | None, report_path: str | None, queue_only: bool
) -> None:
    """Re-create, with the v2 tags API, every tag that JOB (run with --backup) deleted.

    A key set again since JOB deleted it keeps its newer value (kept_newer). The undo is a job
    like any other: rate limit, retries, status, report; running undo again follows the same
    undo job. Exit codes as for run; 2 when JOB cannot be undone (no backup, still running).
    """
    from producer.run import run_job
    from producer.undo import prepare_undo

    check_output(report_path or "tagsweep-report-UNDOJOB.csv")

    def make(client: redis.Redis) -> tuple[str, bool]:
        check_not_expired(client, job_id)
        undo_id, existed = prepare_undo(client, job_id, rate_per_s=rate)
        verb = "follows" if existed else "is"
        click.echo(f"undo job {undo_id} {verb} the undo of job {job_id}", err=True)
        return undo_id, existed

    if queue_only:
        client = connect_redis(Settings.from_env().redis_url)
        queue_for_workers(client, make(client)[0])
        return
    code = run_job(
        {}, processes=processes, simulate=False, report=report_path, new=False, make_job=make
    )
    sys.exit(code)
