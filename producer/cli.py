"""The ``tagsweep`` command line (click): one sub-command per user task."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import redis

from producer.batching import DEFAULT_MAX_TAGS_PER_REQUEST
from producer.collect import Collection, collect
from producer.connection import connect_redis
from producer.control import cancel_job, retry_job
from producer.plan import make_plan, render_plan
from producer.report import iter_report, write_report
from producer.status import latest_job_id, read_job, read_status, render_status
from producer.submit import create_job, dispatch_chunks, files_checksum
from producer.watch import watch_job
from worker.errors import TagsweepError
from worker.jobs import Api, JobOptions
from worker.model import RowStatus
from worker.settings import Settings


@click.group()
@click.version_option(package_name="tagsweep")
def cli() -> None:
    """Remove tags from Huawei Cloud IMS images in bulk, from CSV files."""


EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_ABORTED = 0, 1, 2, 3
DEFAULT_RATE_PER_S = 50.0

files_argument = click.argument("files", nargs=-1, required=True, metavar="FILE...")
project_option = click.option(
    "--project-id",
    envvar="HUAWEICLOUD_SDK_PROJECT_ID",
    help="Project of rows without a project_id [env HUAWEICLOUD_SDK_PROJECT_ID].",
)
region_option = click.option(
    "--region", envvar="TAGSWEEP_REGION", help="Region of rows without one [env TAGSWEEP_REGION]."
)
rate_option = click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_RATE_PER_S,
    show_default=True,
    envvar="TAGSWEEP_RATE",
    help="Requests/s for the whole job, all workers together [env TAGSWEEP_RATE].",
)
max_tags_option = click.option(
    "--max-tags-per-request",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TAGS_PER_REQUEST,
    show_default=True,
    help="An image with more tags is split into several requests.",
)


def report_problems(collection: Collection) -> None:
    """Print warnings, file errors and invalid rows on stderr, one per line."""
    for warning in collection.warnings:
        click.echo(f"warning: {warning}", err=True)
    for file_error in collection.file_errors:
        click.echo(str(file_error), err=True)
    for error in collection.errors:
        click.echo(str(error), err=True)


@cli.command()
@files_argument
@project_option
@region_option
@rate_option
@max_tags_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
def validate(
    files: tuple[str, ...],
    project_id: str | None,
    region: str | None,
    rate: float,
    max_tags_per_request: int,
    as_json: bool,
) -> None:
    """Read and check FILE... (`-` for stdin) and print the plan; nothing is sent.

    Exit code 0 when every row is valid, 2 otherwise.
    """
    collection = collect(list(files), default_project_id=project_id, default_region=region)
    plan = make_plan(collection, max_tags=max_tags_per_request, rate_per_s=rate)
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
        sys.exit(EXIT_BAD_INPUT)


def job_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options a job carries to every worker (no credentials among them)."""
    decorators = [
        click.option(
            "--endpoint",
            envvar="TAGSWEEP_ENDPOINT",
            help="IMS base URL instead of https://ims.{region}.myhuaweicloud.com "
            "[env TAGSWEEP_ENDPOINT].",
        ),
        click.option(
            "--api",
            type=click.Choice(["v1", "v2"]),
            default="v1",
            show_default=True,
            help="v1 batch delete, or v2 tags/action for clouds without the v1 path.",
        ),
        click.option(
            "--max-attempts",
            type=click.IntRange(min=1),
            default=8,
            show_default=True,
            help="Calls per request before its rows end failed.",
        ),
        click.option(
            "--row-deadline",
            type=click.FloatRange(min=1),
            default=600.0,
            show_default=True,
            help="Seconds of retrying per request at most.",
        ),
        click.option(
            "--breaker-min",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Requests before the failure-share breaker may trip.",
        ),
        click.option(
            "--breaker-ratio",
            type=click.FloatRange(0, 1),
            default=0.5,
            show_default=True,
            help="Failure share that aborts the job.",
        ),
        click.option(
            "--chunk-requests",
            type=click.IntRange(min=1),
            default=100,
            show_default=True,
            help="Requests per Celery message.",
        ),
        click.option(
            "--skip-invalid",
            is_flag=True,
            help="Queue the valid rows and record the invalid ones as invalid.",
        ),
        files_argument,
        project_option,
        region_option,
        rate_option,
        max_tags_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _options_from(kw: dict[str, Any]) -> JobOptions:
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
        options=_options_from(kw),
        max_tags=kw["max_tags_per_request"],
        chunk_requests=kw["chunk_requests"],
        skip_invalid=kw["skip_invalid"],
        checksum=files_checksum(files),
    )


@cli.command()
@job_options
def submit(**kw: Any) -> None:
    """Check FILE... and queue a job for running workers; print its id on the last line."""
    client = connect_redis(Settings.from_env().redis_url)
    job_id, chunks = prepare_job(client, kw)
    from worker.tasks import dispatch_chunk

    dispatch_chunks(dispatch_chunk, job_id, range(chunks))
    click.echo(job_id)


@cli.command()
@click.argument("job_id", required=False)
@click.option("--watch", is_flag=True, help="Follow the job until it ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds, --watch.")
def status(job_id: str | None, watch: bool, as_json: bool, interval: float) -> None:
    """Progress, rate, ETA and counts per status of JOB (default: the latest job)."""
    client = connect_redis(Settings.from_env().redis_url)
    job_id = job_id or latest_job_id(client)
    if watch:
        final = watch_job(client, job_id, interval_s=interval)
        click.echo(render_status(final) if not as_json else json.dumps(final.as_json()))
        return
    current = read_status(client, job_id)
    click.echo(json.dumps(current.as_json()) if as_json else render_status(current))


@cli.command()
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


@cli.command()
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
    numbers = retry_job(client, job_id, set(only))
    from worker.tasks import dispatch_chunk

    dispatch_chunks(dispatch_chunk, job_id, numbers)
    click.echo(f"{len(numbers)} chunk(s) queued again for job {job_id}")


@cli.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel JOB: rows not sent yet end `cancelled`."""
    client = connect_redis(Settings.from_env().redis_url)
    if cancel_job(client, job_id):
        click.echo(f"job {job_id} cancelled")
    else:
        click.echo(f"job {job_id} had already ended; nothing to cancel", err=True)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=2,
    show_default=True,
    help="Worker processes (each with many calls in flight).",
)
@click.option("--loglevel", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int, loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Start a Celery worker with tagsweep's settings (`celery -A worker worker` works too)."""
    from worker.app import app, setup_worker_logging

    setup_worker_logging()  # now, so that even start-up warnings are JSON lines
    # --quiet: no start-up banner, so stdout stays one JSON object a line.
    argv = ["--quiet", "worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    app.worker_main(argv=[*argv, *celery_args])


def _parse_fail_rates(values: tuple[str, ...]) -> dict[int, float]:
    rates: dict[int, float] = {}
    for item in values:
        status, sep, share = item.partition("=")
        try:
            if not sep:
                raise ValueError
            rates[int(status)] = float(share)
        except ValueError:
            raise click.BadParameter(
                f"{item!r} is not STATUS=FRACTION", param_hint="--fail-rate"
            ) from None
        if not 0.0 <= rates[int(status)] <= 1.0:
            raise click.BadParameter(
                f"{item!r}: the fraction must be in 0..1", param_hint="--fail-rate"
            )
    if sum(rates.values()) > 1.0:
        raise click.BadParameter("the fractions add up to more than 1", param_hint="--fail-rate")
    return rates


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8470, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--seed",
    "seed_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV (image_id,key,value[,project_id]) of the images that exist.",
)
@click.option(
    "--project-id",
    default="0123456789abcdef0123456789abcdef",
    show_default=True,
    help="Project of seed rows without a project_id.",
)
@click.option("--ak", envvar="HUAWEICLOUD_SDK_AK", help="Accepted AK [env HUAWEICLOUD_SDK_AK].")
@click.option("--sk", envvar="HUAWEICLOUD_SDK_SK", help="Its SK [env HUAWEICLOUD_SDK_SK].")
@click.option("--user", help="IAM user that may fetch tokens.")
@click.option("--password", envvar="TAGSWEEP_IAM_PASSWORD", help="[env TAGSWEEP_IAM_PASSWORD]")
@click.option("--domain", help="The user's account (domain) name; defaults to the user.")
@click.option("--rate-limit", type=float, help="Requests/s per identity before 429 APIGW.0308.")
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option("--latency-jitter-ms", type=float, default=0.0, show_default=True)
@click.option(
    "--fail-rate",
    multiple=True,
    metavar="STATUS=FRACTION",
    help="Share of calls answered with STATUS, e.g. 503=0.2; repeatable.",
)
@click.option(
    "--drop-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of calls whose connection is dropped without an answer.",
)
@click.option("--token-ttl", type=float, default=86400.0, show_default=True, help="Token life, s.")
@click.option("--random-seed", type=int, help="Seed for the fault and latency dice.")
def simulator(
    host: str,
    port: int,
    seed_csv: Path | None,
    project_id: str,
    ak: str | None,
    sk: str | None,
    user: str | None,
    password: str | None,
    domain: str | None,
    rate_limit: float | None,
    latency_ms: float,
    latency_jitter_ms: float,
    fail_rate: tuple[str, ...],
    drop_rate: float,
    token_ttl: float,
    random_seed: int | None,
) -> None:
    """Serve the IMS + IAM simulator over HTTP until interrupted."""
    # Imported here: asyncio and aiohttp's server side would slow every other command's start-up.
    import asyncio

    from simulator.config import SimulatorConfig, SimUser
    from simulator.server import build_simulator, serve_forever

    if bool(ak) != bool(sk):
        raise click.UsageError("--ak and --sk go together")
    if user and not password:
        raise click.UsageError("--user needs --password (or TAGSWEEP_IAM_PASSWORD)")
    config = SimulatorConfig(
        project_id=project_id,
        aksk={ak: sk} if ak and sk else {},
        users=(SimUser(user, password or "", domain or user),) if user else (),
        rate_limit_per_s=rate_limit,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        fail_rates=_parse_fail_rates(fail_rate),
        drop_rate=drop_rate,
        token_ttl_s=token_ttl,
        seed=random_seed,
    )
    sim = build_simulator(config, seed_csv=seed_csv)
    asyncio.run(serve_forever(sim, host=host, port=port))


def main() -> None:
    """Entry point: run the command line, turning expected errors into one line and exit 2."""
    try:
        cli.main(prog_name="tagsweep", standalone_mode=True)
    except TagsweepError as exc:
        click.echo(f"tagsweep: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
