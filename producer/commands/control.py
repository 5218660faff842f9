"""The commands that change a job that exists: cancel, retry, undo, forget."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from producer.commands.checks import check_output
from producer.commands.jobs import queue_for_workers
from producer.connection import connect_redis, job_redis, shared_redis_url
from producer.control import cancel_job, retry_job
from producer.errors import Declined
from producer.exits import ExitCode
from producer.jobspec import interactive
from producer.options import report_option, workers_option
from producer.retention import check_not_expired, forget_job, pending_backup
from producer.submit import dispatch_pending
from worker.jobs import Api
from worker.model import RowStatus

if TYPE_CHECKING:
    import redis


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel JOB: rows not sent yet end `cancelled`.

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    with job_redis() as client:
        cancelled = cancel_job(client, job_id)
    if cancelled is not None:
        held = ""
        if cancelled.held:
            held = f"; the {cancelled.held} chunk(s) workers hold end as they see it"
        click.echo(f"job {job_id} cancelled ({cancelled.rows:,} unsent rows marked{held})")
    else:
        click.echo(f"job {job_id} had already ended; nothing to cancel", err=True)


@click.command()
@click.argument("job_id")
@click.option(
    "--only",
    multiple=True,
    default=("failed",),
    show_default=True,
    type=click.Choice([s.value for s in RowStatus if s is not RowStatus.INVALID]),
    help="Statuses to send again; repeatable.",
)
@click.option(
    "--api",
    type=click.Choice([api.value for api in Api]),
    help="Send them through this API from now on [default: the job's own]; tms and auto "
    "delete BY KEY ONLY, whatever the value.",
)
@workers_option
@report_option("./tagsweep-report-JOB.csv")
@click.option(
    "--queue-only",
    is_flag=True,
    help="Only queue the rows for workers already running (what retry does with REDIS_URL).",
)
def retry(
    job_id: str,
    only: tuple[str, ...],
    api: str | None,
    processes: int,
    report_path: str | None,
    queue_only: bool,
) -> ExitCode | None:
    """Send again the rows of JOB that ended in a status of --only (default: failed).

    In a folder whose jobs live in the private Redis (./.tagsweep/, no REDIS_URL) it works
    them like run: local workers, progress, report, run's exit codes. With REDIS_URL, or with
    --queue-only, it only queues them for the workers already running.

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one here
    (--queue-only is refused there: no worker elsewhere reaches it), else
    redis://127.0.0.1:6379/0.
    """
    from producer.embedded import holds_private_data
    from producer.run import LocalRun, run_job

    def reset(client: redis.Redis) -> int:
        check_not_expired(client, job_id)
        return retry_job(client, job_id, set(only), api=Api(api) if api else None)

    def make(client: redis.Redis) -> tuple[str, bool]:
        click.echo(f"{reset(client):,} row(s) of job {job_id} to send again", err=True)
        return job_id, True

    if queue_only or os.environ.get("REDIS_URL") or not holds_private_data():
        client = connect_redis(shared_redis_url("retry --queue-only"))
        rows = reset(client)
        from worker.broker import dispatch_chunk

        queued = dispatch_pending(client, dispatch_chunk, job_id)
        click.echo(f"{rows:,} row(s) in {queued} chunk(s) queued again for job {job_id}")
        return None
    check_output(report_path)
    return run_job(make, LocalRun(processes=processes, report=report_path))


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
) -> ExitCode | None:
    """Re-create, with the v2 tags API, every tag that JOB (run with --backup) deleted.

    A key set again since JOB deleted it keeps its newer value (kept_newer). The undo is a job
    like any other: rate limit, retries, status, report; running undo again follows the same
    undo job. Exit codes as for run; 2 when JOB cannot be undone (no backup, still running).

    Redis: as for retry (--queue-only: REDIS_URL or redis://127.0.0.1:6379/0, refused where
    ./.tagsweep/ holds a private Redis).
    """
    from producer.run import LocalRun, run_job
    from producer.undo import prepare_undo

    check_output(report_path or "tagsweep-report-UNDOJOB.csv")

    def make(client: redis.Redis) -> tuple[str, bool]:
        check_not_expired(client, job_id)
        undo_id, existed = prepare_undo(client, job_id, rate_per_s=rate)
        verb = "follows" if existed else "is"
        click.echo(f"undo job {undo_id} {verb} the undo of job {job_id}", err=True)
        return undo_id, existed

    if queue_only:
        client = connect_redis(shared_redis_url("undo --queue-only"))
        queue_for_workers(client, make(client)[0])
        return None
    return run_job(make, LocalRun(processes=processes, report=report_path))


@click.command(short_help="Delete a finished job's data now.")
@click.argument("job_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask, even for a job holding a backup.")
def forget(job_id: str, yes: bool) -> None:
    """Delete a finished job's data (results, chunks, backup) from Redis now.

    Refused for a queued or running job, and while workers still hold chunks of it (a job just
    cancelled: they mark their rows first). On a terminal, asks first when the job holds a backup
    that was not undone (the tags could then no longer be put back).

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    with job_redis() as client:
        expires = pending_backup(client, job_id)
        question = (
            f"job {job_id} holds a backup not undone (kept until {expires}); forget it and the "
            "tags can no longer be put back?"
        )
        if expires and not yes and interactive() and not click.confirm(question, err=True):
            raise Declined("nothing deleted")
        deleted = forget_job(client, job_id)
    click.echo(f"job {job_id} forgotten ({deleted:,} keys deleted)")
