"""From a job request to a written job: check the files, print the plan, confirm, write it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from producer.collect import Collection, collect
from producer.errors import Declined, InputRejected
from producer.planning import make_plan, render_plan
from producer.problems import no_rows, report_problems
from producer.retention import record_keep
from producer.submit import (
    claim_job_id,
    create_job,
    files_checksum,
    find_submitted,
    new_job_id,
    point_resume_key,
)
from worker import keys
from worker.cloud.tmsrules import TMS_ENDPOINTS
from worker.errors import ConfigError
from worker.jobs import JobOptions, Mode

if TYPE_CHECKING:
    import redis

    from producer.request import JobRequest


def interactive() -> bool:
    """Whether a person can answer a question: standard input and error are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(rows: int, request: JobRequest) -> None:
    """On a terminal, ask before queueing a deletion of more than ``--confirm-above`` rows
    (the plan was just printed); ``--yes`` and no terminal skip the question. Raises
    ``Declined`` when the answer is no."""
    if request.yes or rows <= request.confirm_above or not interactive():
        return
    backup = (
        "a backup is kept (tagsweep undo can put the tags back)"
        if request.options.backup
        else "NO backup is kept (add --backup to be able to undo)"
    )
    question = f"Delete the tags of {rows:,} rows? {backup}."
    if not click.confirm(question, default=False, err=True):
        raise Declined("nothing queued")


def checked_collection(request: JobRequest) -> Collection:
    """The request's files read and checked, their problems printed. Raises ``InputRejected``
    (nothing queued) for a file error, or a row error without ``--skip-invalid``, and
    ``InputError`` for files without a data row."""
    collection = collect(
        list(request.files), default_project_id=request.project_id, default_region=request.region
    )
    report_problems(collection, all_errors=request.all_errors)
    if collection.file_errors or (collection.errors and not request.skip_invalid):
        problems = len(collection.file_errors) + len(collection.errors)
        raise InputRejected(problems, hint=not collection.file_errors)
    empty = no_rows(collection)
    if empty:
        raise empty
    if not request.simulated:  # a simulated run's TMS is its simulator
        check_tms_regions(collection, request.options)
    return collection


def check_tms_regions(collection: Collection, options: JobOptions) -> None:
    """A TMS job whose rows are in a region with no TMS endpoint known (and no
    ``--tms-endpoint``) is refused before anything is written or sent."""
    if not options.sending_api.uses_tms or options.tms_endpoint:
        return
    unknown = sorted({region for region, _ in collection.scopes} - set(TMS_ENDPOINTS))
    if unknown:
        raise ConfigError(
            f"--api {options.api.value}: no TMS endpoint is known for region "
            f"{', '.join(unknown)}; set --tms-endpoint (env TAGSWEEP_TMS_ENDPOINT)"
        )


def prepare_job(
    client: redis.Redis,
    request: JobRequest,
    *,
    new: bool = False,
    err: bool = False,
    collection: Collection | None = None,
) -> tuple[str, bool]:
    """Find the job these files and this target already have, or check and write a new one.

    Returns (job id, whether it existed). Raises ``InputRejected`` or ``Declined`` with nothing
    written. ``err``: print the plan on stderr (stdout carries a report). ``collection``: the
    files already read and checked (``checked_collection``), so they are not read again.
    """
    checksum = files_checksum(list(request.files))
    key = request.submission_key(checksum)
    if key and not new and (found := find_submitted(client, key)):
        return found, True  # the caller says how it takes it up (resume.take_up)
    if collection is None:
        collection = checked_collection(request)
    show_plan(collection, request, err=err)
    job_id = _job_id(client, key, new=new)
    create_job(
        client,
        collection,
        options=request.options,
        max_tags=request.max_tags_per_request,
        chunk_requests=request.chunk_requests,
        skip_invalid=request.skip_invalid,
        checksum=checksum,
        job_id=job_id,
    )
    resume_key = keys.resume(key) if key else None
    record_keep(client, job_id, keep_ms=request.keep_ms, resume_key=resume_key)
    return job_id, False


def show_plan(collection: Collection, request: JobRequest, *, err: bool) -> None:
    """Print the plan and the kind of job; a deletion is then confirmed (``confirm``)."""
    options = request.options
    plan = make_plan(
        collection,
        max_tags=request.max_tags_per_request,
        rate_per_s=options.rate_per_s,
        calls_per_request=2 if options.backup else 1,
        api=options.sending_api,
    )
    click.echo(render_plan(plan), err=err)
    click.echo(f"job kind    {options.describe()}", err=err)
    if options.mode is Mode.DELETE:
        confirm(plan.valid + plan.duplicate, request)


def _job_id(client: redis.Redis, key: str | None, *, new: bool) -> str:
    """A new job's id; under ``key`` (files and target) unless the files are stdin."""
    if key is None:
        return new_job_id()
    if new:
        job_id = new_job_id()
        point_resume_key(client, key, job_id)
        return job_id
    return claim_job_id(client, key)
