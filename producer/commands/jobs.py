"""The commands that make and work a job from CSV files: plan, run, submit (validate, which
only reads them, is ``producer.commands.validate``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from producer.commands.checks import check_files, check_has_rows, check_output
from producer.connection import connect_redis, shared_redis_url
from producer.exits import ExitCode
from producer.jobspec import prepare_job
from producer.options import job_request, report_option, workers_option
from producer.redis_check import allow_eviction_option, check_redis
from producer.resume import take_up
from producer.submit import dispatch_pending
from worker.jobs import Mode

if TYPE_CHECKING:
    import redis

    from producer.request import JobRequest

simulate_option = click.option(
    "--simulate",
    is_flag=True,
    help="Work against a simulator seeded from the same files, with demo credentials.",
)


@click.command(short_help="Say per row what a run would change (read-only).")
@job_request(mode=Mode.PLAN, safety=False)
@workers_option
@simulate_option
@report_option("stdout", default="-")
def plan(request: JobRequest, processes: int, simulate: bool, report_path: str) -> ExitCode:
    """Read the live tags of the files' images and say, per row, what a run would do.

    Each row ends would_delete (key present, same value), value_differs (present with another
    value, shown in current_value), absent, or image_not_found. Read-only: the reads go
    through local workers under the same rate limit and retries as a run. The totals go to
    stderr while the per-row answers are on stdout (the default), else to stdout. Exit code 0
    when every row got an answer, 1 otherwise, 2 on bad input. Redis: as for run (REDIS_URL,
    else the private one of ./.tagsweep/).
    """
    from producer.run import LocalRun, run_job

    check_files(request.files)
    check_has_rows(request.files)
    check_output(report_path, "plan")
    local = LocalRun(processes=processes, report=report_path, simulate=simulate, new=True)
    return run_job(request, local)


@click.command()
@job_request()
@workers_option
@simulate_option
@allow_eviction_option
@report_option("./tagsweep-report-JOB.csv")
@click.option(
    "--new", is_flag=True, help="Start a new job even if one for these files can be resumed."
)
def run(
    request: JobRequest,
    processes: int,
    simulate: bool,
    allow_eviction: bool,
    report_path: str | None,
    new: bool,
) -> ExitCode:
    """Validate, submit, work and report the files on this machine; resumable.

    The job is worked in this process first; local workers (--workers) start when it needs
    more than a second or two. Redis: REDIS_URL; without it, a private one that keeps the job
    under ./.tagsweep/ (which status, jobs, report, cancel and the exporter then use here too),
    and the workers work this job only. Exit code 0: every row
    deleted or not_found; 1: some rows in another final status; 2: bad input; 3: the job was
    aborted or cancelled (or not confirmed); 130: interrupted (run the same command again to
    resume). With --backup, `tagsweep undo JOB` can put the deleted tags back.
    """
    from producer.run import LocalRun, run_job

    check_files(request.files)
    check_has_rows(request.files)
    check_output(report_path or "tagsweep-report-JOB.csv")
    local = LocalRun(
        processes=processes,
        report=report_path,
        simulate=simulate,
        new=new,
        allow_eviction=allow_eviction,
    )
    return run_job(request, local)


@click.command()
@job_request()
@allow_eviction_option
@click.option("--new", is_flag=True, help="A new job even if these files were submitted before.")
def submit(request: JobRequest, allow_eviction: bool, new: bool) -> None:
    """Check the files and queue a job for running workers; print its id on the last line.

    Submitting the same files for the same target again resumes that job: only the chunks not
    queued yet are queued (after a submission that was killed, say).

    Redis: REDIS_URL (default redis://127.0.0.1:6379/0), shared with the workers; refused
    without REDIS_URL where ./.tagsweep/ holds a private Redis (use `run` there).
    """
    check_files(request.files)
    check_has_rows(request.files)
    redis_url = shared_redis_url("submit")
    check_redis(redis_url, allow_eviction=allow_eviction)
    client = connect_redis(redis_url)
    job_id, resumed = prepare_job(client, request, new=new)
    if resumed:
        take_up(client, job_id)  # an aborted or cancelled job: its unsent rows again
    else:
        from producer.pagedread import read_before_queueing

        read_before_queueing(client, redis_url, job_id, request.options, os.environ)
    queue_for_workers(client, job_id)


def queue_for_workers(client: redis.Redis, job_id: str) -> None:
    """Queue the job's chunks not queued yet for the running workers; print its id last."""
    from worker.broker import dispatch_chunk

    dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(job_id)
