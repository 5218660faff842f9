"""From command-line options to a written job: check the files, print the plan, write it."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from producer.collect import Collection, collect
from producer.plan import make_plan, render_plan
from producer.submit import (
    claim_job_id,
    create_job,
    files_checksum,
    find_submitted,
    new_job_id,
)
from worker import keys
from worker.jobs import Api, JobOptions

if TYPE_CHECKING:
    import redis

EXIT_BAD_INPUT = 2


def report_problems(collection: Collection) -> None:
    """Print warnings, file errors and invalid rows on stderr, one per line."""
    for warning in collection.warnings:
        click.echo(f"warning: {warning}", err=True)
    for file_error in collection.file_errors:
        click.echo(str(file_error), err=True)
    for error in collection.errors:
        click.echo(str(error), err=True)


def options_from(kw: dict[str, Any]) -> JobOptions:
    return JobOptions(
        endpoint=kw["endpoint"],
        api=Api(kw["api"]),
        rate_per_s=kw["rate"],
        max_attempts=kw["max_attempts"],
        row_deadline_s=kw["row_deadline"],
        breaker_min=kw["breaker_min"],
        breaker_ratio=kw["breaker_ratio"],
    )


def submission_key(kw: dict[str, Any], checksum: str) -> str | None:
    """What finds a job again: the files' bytes and the target. None for stdin (not re-read)."""
    if "-" in kw["files"]:
        return None
    material = [
        checksum,
        kw["endpoint"],
        kw["region"],
        kw["project_id"],
        kw["api"],
        kw["max_tags_per_request"],
        kw["chunk_requests"],
        kw["skip_invalid"],
    ]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]


def prepare_job(client: redis.Redis, kw: dict[str, Any], *, new: bool = False) -> tuple[str, bool]:
    """Find the job these files and this target already have, or check and write a new one.

    Returns (job id, whether it existed). Exits 2 on bad input, with nothing written.
    """
    files = list(kw["files"])
    checksum = files_checksum(files)
    key = submission_key(kw, checksum)
    if key and not new and (found := find_submitted(client, key)):
        click.echo(
            f"job {found} was submitted for these files and this target: resuming it", err=True
        )
        return found, True
    collection = collect(files, default_project_id=kw["project_id"], default_region=kw["region"])
    report_problems(collection)
    if collection.file_errors or (collection.errors and not kw["skip_invalid"]):
        click.echo(
            f"tagsweep: nothing queued: {len(collection.file_errors) + len(collection.errors)} "
            "problem(s) above (--skip-invalid queues the valid rows)",
            err=True,
        )
        sys.exit(EXIT_BAD_INPUT)
    plan = make_plan(collection, max_tags=kw["max_tags_per_request"], rate_per_s=kw["rate"])
    click.echo(render_plan(plan))
    if key is None:
        job_id = new_job_id()
    elif new:
        job_id = new_job_id()
        client.set(keys.resume(key), job_id)
    else:
        job_id = claim_job_id(client, key)
    create_job(
        client,
        collection,
        options=options_from(kw),
        max_tags=kw["max_tags_per_request"],
        chunk_requests=kw["chunk_requests"],
        skip_invalid=kw["skip_invalid"],
        checksum=checksum,
        job_id=job_id,
    )
    return job_id, False
