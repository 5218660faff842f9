"""From command-line options to a written job: check the files, print the plan, write it."""

from __future__ import annotations

import sys
from typing import Any

import click
import redis

from producer.collect import Collection, collect
from producer.plan import make_plan, render_plan
from producer.submit import create_job, files_checksum
from worker.jobs import Api, JobOptions

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


def prepare_job(client: redis.Redis, kw: dict[str, Any]) -> tuple[str, int]:
    """Read, check and write a job (nothing queued yet); exit 2 on bad input."""
    files = list(kw["files"])
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
    return create_job(
        client,
        collection,
        options=options_from(kw),
        max_tags=kw["max_tags_per_request"],
        chunk_requests=kw["chunk_requests"],
        skip_invalid=kw["skip_invalid"],
        checksum=files_checksum(files),
    )
