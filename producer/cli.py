"""The ``tagsweep`` command line (click): one sub-command per user task."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from producer import cli_jobs, cli_ops, cli_select
from producer.collect import collect
from producer.exits import EXIT_BAD_INPUT, error_line
from producer.jobspec import report_problems
from producer.options import (
    estimate_rate_option,
    files_argument,
    max_tags_option,
    project_option,
    region_option,
)
from producer.planning import make_plan, render_plan
from producer.redis_check import allow_eviction_option, check_redis
from worker.settings import Settings

if TYPE_CHECKING:
    from simulator.limits import RateLimit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tagsweep")
def cli() -> None:
    """Remove tags from Huawei Cloud IMS images in bulk, from CSV files."""


# What `tagsweep --help` lists: one line each that fits (click cuts a docstring's first
# sentence at about 45 characters with "...").
SHORT_HELP = {
    "run": "Validate, queue, work and report on this machine.",
    "validate": "Check the files and print the plan; send nothing.",
    "submit": "Queue a job for running workers; print its id.",
    "status": "Progress, rate, ETA and counts per status of a job.",
    "report": "One line per input row with its result.",
    "retry": "Queue again the rows that ended failed.",
    "cancel": "Cancel a job: rows not sent yet end cancelled.",
    "plan": "Say per row what a run would change (read-only).",
    "undo": "Re-create the tags a --backup job deleted.",
    "worker": "Start a Celery worker with tagsweep's settings.",
    "simulator": "Serve the IMS + IAM simulator over HTTP.",
}

for command in (
    cli_jobs.run,
    cli_jobs.submit,
    cli_jobs.status,
    cli_jobs.report,
    cli_jobs.retry,
    cli_jobs.cancel,
    cli_jobs.plan,
    cli_jobs.undo,
    cli_select.select,
    cli_ops.jobs,
    cli_ops.forget,
    cli_ops.exporter,
):
    cli.add_command(command)


@cli.command()
@files_argument
@project_option
@region_option
@estimate_rate_option
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
    """Read and check the files (`-` for stdin) and print the plan; nothing is sent.

    Exit code 0 when every row is valid, 2 otherwise.
    """
    collection = collect(list(files), default_project_id=project_id, default_region=region)
    plan = make_plan(collection, max_tags=max_tags_per_request, rate_per_s=rate)
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
        sys.exit(EXIT_BAD_INPUT)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=2,
    show_default=True,
    help="Worker processes (each with many calls in flight).",
)
@click.option(
    "--loglevel",
    envvar="TAGSWEEP_LOG_LEVEL",
    default="INFO",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="debug adds a line per request that succeeded [env TAGSWEEP_LOG_LEVEL].",
)
@allow_eviction_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED, metavar="[CELERY_ARGS]...")
def worker(
    concurrency: int, loglevel: str, allow_eviction: bool, celery_args: tuple[str, ...]
) -> None:
    """Start a Celery worker with tagsweep's settings (`celery -A worker worker` works too,
    without the check that Redis does not evict)."""
    from worker.app import app, setup_worker_logging

    setup_worker_logging()  # now, so that even start-up warnings are JSON lines
    check_redis(Settings.from_env().redis_url, allow_eviction=allow_eviction, log=True)
    # --quiet: no start-up banner, so stdout stays one JSON object a line.
    argv = ["--quiet", "worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    if not any(arg in ("-n", "--hostname") or arg.startswith("--hostname=") for arg in celery_args):
        # Celery's default, celery@HOST, is the same for every worker of a host.
        argv.append(f"--hostname=tagsweep-{os.getpid()}@%h")
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


def _parse_rate_limit(value: str | None) -> RateLimit | None:
    from simulator.limits import RateLimit

    if value is None:
        return None
    try:
        return RateLimit.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--rate-limit") from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8470,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--seed",
    "seed_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    multiple=True,
    help="CSV (image_id,key,value[,project_id]) of the images that exist; repeatable.",
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
@click.option(
    "--password",
    envvar="TAGSWEEP_IAM_PASSWORD",
    help="That user's password [env TAGSWEEP_IAM_PASSWORD].",
)
@click.option("--domain", help="The user's account (domain) name; defaults to the user.")
@click.option(
    "--rate-limit",
    metavar="COUNT[/WINDOW]",
    help="Calls per identity before 429 APIGW.0308: COUNT a second (a token bucket), or COUNT "
    "per fixed WINDOW such as 30s, 1min, 5min [default: no limit].",
)
@click.option(
    "--rate-limit-message",
    type=click.Choice(["gateway", "plain"]),
    default="gateway",
    show_default=True,
    help="gateway: the 429 message names the limit (limit:COUNT,time:N unit); plain: it does not.",
)
@click.option(
    "--latency-ms", type=float, default=0.0, show_default=True, help="Added to every answer."
)
@click.option(
    "--latency-jitter-ms",
    type=float,
    default=0.0,
    show_default=True,
    help="Latency varies by up to this much either way.",
)
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
    seed_csv: tuple[Path, ...],
    project_id: str,
    ak: str | None,
    sk: str | None,
    user: str | None,
    password: str | None,
    domain: str | None,
    rate_limit: str | None,
    rate_limit_message: Literal["gateway", "plain"],
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
        rate_limit=_parse_rate_limit(rate_limit),
        rate_limit_message=rate_limit_message,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_jitter_ms,
        fail_rates=_parse_fail_rates(fail_rate),
        drop_rate=drop_rate,
        token_ttl_s=token_ttl,
        seed=random_seed,
    )
    sim = build_simulator(config, seed_csv=list(seed_csv))
    asyncio.run(serve_forever(sim, host=host, port=port))


for _name, _text in SHORT_HELP.items():
    cli.commands[_name].short_help = _text


class _Ending:
    """How the process ends. ``skip_teardown``: a command that holds a large structure and has
    nothing left to clean up (``validate``: a million rows' collection) exits without freeing
    it; freeing is 85 ms of a 2.5 s validation of 1M rows (bench/validate.py)."""

    skip_teardown = False


ENDING = _Ending()


def main() -> None:
    """Entry point: run the command line; an expected error is one line and its exit code
    (``exits.error_line``), never a traceback."""
    try:
        code = cli.main(prog_name="tagsweep", standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        mapped = error_line(exc)
        if mapped is None:
            raise
        line, code = mapped
        click.echo(line, err=True)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    _end(code if isinstance(code, int) else 0)


def _end(code: int) -> None:
    if ENDING.skip_teardown:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
