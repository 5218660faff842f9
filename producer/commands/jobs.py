"""The commands that make and work a job from CSV files: validate, plan, run, submit."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from producer.collect import collect
from producer.commands.checks import check_files, check_output
from producer.connection import connect_redis
from producer.exits import ENDING, ExitCode
from producer.jobspec import prepare_job, report_problems
from producer.options import (
    api_option,
    estimate_rate_option,
    files_argument,
    job_request,
    max_tags_option,
    project_option,
    region_option,
    report_option,
    workers_option,
)
from producer.planning import make_plan, render_plan
from producer.redis_check import allow_eviction_option, check_redis
from producer.resume import take_up
from producer.submit import dispatch_pending
from worker.jobs import Api, Mode
from worker.settings import Settings

if TYPE_CHECKING:
    import redis

    from producer.request import JobRequest

simulate_option = click.option(
    "--simulate",
    is_flag=True,
    help="Work against a simulator seeded from the same files, with demo credentials.",
)


@click.command()
@files_argument
@project_option
@region_option
@estimate_rate_option
@max_tags_option
@api_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def validate(
    files: tuple[str, ...],
    project_id: str | None,
    region: str | None,
    rate: float,
    max_tags_per_request: int,
    api: str,
    as_json: bool,
) -> ExitCode:
    """Read and check the files (`-` for stdin) and print the plan; nothing is sent.

    Exit code 0 when every row is valid, 2 otherwise.
    """
    collection = collect(list(files), default_project_id=project_id, default_region=region)
    plan = make_plan(collection, max_tags=max_tags_per_request, rate_per_s=rate, api=Api(api))
    ENDING.skip_teardown = True
    if as_json:
        document = {
            "plan": plan.as_json(),
            "errors": [str(error) for error in collection.file_errors + collection.errors],
            "warnings": collection.warnings,
        }
        click.echo(json.dumps(document, indent=2))
    else:
        report_problems(collection)
        click.echo(render_plan(plan))
    if collection.errors or collection.file_errors:
        return ExitCode.BAD_INPUT
    return ExitCode.OK


@click.command(short_help="Say per row what a run would change (read-only).")
@job_request(mode=Mode.PLAN, safety=False)
@workers_option
@simulate_option
@report_option("stdout", default="-")
def plan(request: JobRequest, processes: int, simulate: bool, report_path: str) -> ExitCode:
    """Read the live tags of the files' images and say, per row, what a run would do.

    Each row ends would_delete (key present, same value), value_differs (present with another
    value, shown in current_value), absent, or image_not_found. Read-only: the reads go
    through local workers under the same rate limit and retries as a run. Totals go to stderr.
    Exit code 0 when every row got an answer, 1 otherwise, 2 on bad input.
    """
    from producer.run import LocalRun, run_job

    check_files(request.files)
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

    Without REDIS_URL a private Redis keeps the job under ./.tagsweep/. Exit code 0: every row
    deleted or not_found; 1: some rows in another final status; 2: bad input; 3: the job was
    aborted or cancelled (or not confirmed); 130: interrupted (run the same command again to
    resume). With --backup, `tagsweep undo JOB` can put the deleted tags back.
    """
    from producer.run import LocalRun, run_job

    check_files(request.files)
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
    """
    check_files(request.files)
    redis_url = Settings.from_env().redis_url
    check_redis(redis_url, allow_eviction=allow_eviction)
    client = connect_redis(redis_url)
    job_id, resumed = prepare_job(client, request, new=new)
    if resumed:
        take_up(client, job_id)  # an aborted or cancelled job: its unsent rows again
    queue_for_workers(client, job_id)


def queue_for_workers(client: redis.Redis, job_id: str) -> None:
    """Queue the job's chunks not queued yet for the running workers; print its id last."""
    from worker.broker import dispatch_chunk

    dispatch_pending(client, dispatch_chunk, job_id)
    click.echo(job_id)
