"""From command-line options to a written job: check the files, print the plan, write it."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from producer.collect import Collection, collect
from producer.errors import InputError
from producer.exits import EXIT_ABORTED, EXIT_BAD_INPUT
from producer.options import DEFAULT_CONFIRM_ABOVE
from producer.planning import make_plan, render_plan
from producer.retention import DEFAULT_KEEP, parse_keep, record_keep
from producer.submit import (
    claim_job_id,
    create_job,
    files_checksum,
    find_submitted,
    new_job_id,
)
from worker import keys
from worker.jobs import Api, JobOptions, Mode

if TYPE_CHECKING:
    import redis

# The user said no at the confirmation: nothing was queued (DESIGN's "cancelled" code).
EXIT_DECLINED = EXIT_ABORTED


def interactive() -> bool:
    """Whether a person can answer a question: standard input and error are terminals."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(rows: int, options: JobOptions, kw: dict[str, Any]) -> None:
    """On a terminal, ask before queueing a deletion of more than ``--confirm-above`` rows
    (the plan was just printed); ``--yes`` and no terminal skip the question."""
    if kw.get("yes") or rows <= kw.get("confirm_above", DEFAULT_CONFIRM_ABOVE):
        return
    if not interactive():
        return
    backup = (
        "a backup is kept (tagsweep undo can put the tags back)"
        if options.backup
        else "NO backup is kept (add --backup to be able to undo)"
    )
    question = f"Delete the tags of {rows:,} rows? {backup}."
    if not click.confirm(question, default=False, err=True):
        click.echo("tagsweep: nothing queued", err=True)
        sys.exit(EXIT_DECLINED)


def report_problems(collection: Collection) -> None:
    """Print warnings, file errors and invalid rows on stderr, one per line."""
    for warning in collection.warnings:
        click.echo(f"warning: {warning}", err=True)
    for file_error in collection.file_errors:
        click.echo(str(file_error), err=True)
    for error in collection.errors:
        click.echo(str(error), err=True)


def options_from(kw: dict[str, Any]) -> JobOptions:
    if kw.get("match_values") and not kw.get("backup"):
        raise click.UsageError("--match-values needs --backup (the values are read by the backup)")
    return JobOptions(
        mode=Mode(kw.get("mode", Mode.DELETE)),
        backup=bool(kw.get("backup")),
        match_values=bool(kw.get("match_values")),
        endpoint=kw["endpoint"],
        api=Api(kw["api"]),
        rate_per_s=kw["rate"],
        max_attempts=kw["max_attempts"],
        row_deadline_s=kw["row_deadline"],
        breaker_min=kw["breaker_min"],
        breaker_ratio=kw["breaker_ratio"],
    )


def check_files(files: list[str]) -> None:
    """Refuse a missing or unreadable input file (or a directory) before anything starts."""
    for name in files:
        if name == "-":
            continue
        try:
            with open(name, "rb"):
                pass
        except OSError as exc:
            raise InputError(name, f"cannot open: {exc.strerror or exc}") from None


def submission_key(kw: dict[str, Any], checksum: str) -> str | None:
    """What finds a job again: the files' bytes and the target. None for stdin (not re-read)."""
    if "-" in kw["files"]:
        return None
    material = [
        checksum,
        "--simulate" if kw.get("simulated") else kw["endpoint"],
        kw["region"],
        kw["project_id"],
        kw["api"],
        kw["max_tags_per_request"],
        kw["chunk_requests"],
        kw["skip_invalid"],
        kw.get("mode", Mode.DELETE),
        bool(kw.get("backup")),
        bool(kw.get("match_values")),
    ]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]


def checked_collection(kw: dict[str, Any]) -> Collection:
    """The files of ``kw`` read and checked; their problems printed, and exit 2 (nothing
    queued) when one is a file error, or a row error without ``--skip-invalid``."""
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
    return collection


def prepare_job(
    client: redis.Redis, kw: dict[str, Any], *, new: bool = False, err: bool = False
) -> tuple[str, bool]:
    """Find the job these files and this target already have, or check and write a new one.

    Returns (job id, whether it existed). Exits 2 on bad input, with nothing written. ``err``:
    print the plan on stderr (stdout carries a report).
    """
    files = list(kw["files"])
    options = options_from(kw)
    checksum = files_checksum(files)
    key = submission_key(kw, checksum)
    if key and not new and (found := find_submitted(client, key)):
        return found, True  # the caller says how it takes it up (resume.take_up)
    collection = checked_collection(kw)
    plan = make_plan(
        collection,
        max_tags=kw["max_tags_per_request"],
        rate_per_s=kw["rate"],
        calls_per_request=2 if options.backup else 1,
    )
    click.echo(render_plan(plan), err=err)
    click.echo(f"job kind    {options.describe()}", err=err)
    if options.mode is Mode.DELETE:
        confirm(plan.valid + plan.duplicate, options, kw)
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
        options=options,
        max_tags=kw["max_tags_per_request"],
        chunk_requests=kw["chunk_requests"],
        skip_invalid=kw["skip_invalid"],
        checksum=checksum,
        job_id=job_id,
    )
    keep_ms = kw.get("keep_ms", parse_keep(DEFAULT_KEEP))
    record_keep(client, job_id, keep_ms=keep_ms, resume_key=keys.resume(key) if key else None)
    return job_id, False
