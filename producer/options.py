"""Click options shared by the commands that read CSV files and make jobs.

``job_request`` declares a job's options on a command and hands the command one frozen
``JobRequest`` instead of them; their defaults are ``JobOptions``'s and ``JobRequest``'s.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.decorators import FC

from producer.file_options import (
    all_errors_option,
    api_option,
    estimate_rate_option,
    files_argument,
    max_tags_option,
    project_option,
    rate_option,
    region_option,
)
from producer.request import DEFAULT_CONFIRM_ABOVE, JobRequest
from producer.retention import keep_option
from worker.jobs import Api, JobOptions, Mode, Read

__all__ = [
    "JOB_DEFAULTS",
    "all_errors_option",
    "api_option",
    "estimate_rate_option",
    "files_argument",
    "job_request",
    "max_tags_option",
    "project_option",
    "region_option",
    "report_option",
    "workers_option",
]

R = TypeVar("R")
DEFAULTS = JobRequest(files=())
JOB_DEFAULTS = DEFAULTS.options


def report_option(default_text: str, default: str | None = None) -> Callable[[FC], FC]:
    """Where a command's per-row file goes: ``--report``, or ``-o``/``--output`` alike."""
    return click.option(
        "--report",
        "-o",
        "--output",
        "report_path",
        type=click.Path(dir_okay=False),
        default=default,
        help=f"Where the per-row report goes [default: {default_text}].",
    )


# Where TMS is and who calls it (--api tms/auto): carried to every worker.
TMS_OPTIONS = (
    click.option(
        "--tms-endpoint",
        envvar="TAGSWEEP_TMS_ENDPOINT",
        help="TMS base URL instead of the region's (as the SDK maps it) "
        "[env TAGSWEEP_TMS_ENDPOINT].",
    ),
    click.option(
        "--domain-id",
        envvar="HUAWEICLOUD_SDK_DOMAIN_ID",
        help="Account (domain) id TMS calls are signed for [env HUAWEICLOUD_SDK_DOMAIN_ID; "
        "default: the workers' own, or their credentials profile's domain_id].",
    ),
    click.option(
        "--tms-resource-type",
        help="TMS resource type of IMS images instead of the one TMS names for the account.",
    ),
)

endpoint_option = click.option(
    "--endpoint",
    envvar="TAGSWEEP_ENDPOINT",
    help="IMS base URL instead of https://ims.{region}.myhuaweicloud.com [env TAGSWEEP_ENDPOINT].",
)

# The options a job carries to every worker (no credentials among them).
JOB_OPTIONS = (
    endpoint_option,
    api_option,
    *TMS_OPTIONS,
    click.option(
        "--max-attempts",
        type=click.IntRange(min=1),
        default=JOB_DEFAULTS.max_attempts,
        show_default=True,
        help="Calls per request before its rows end failed.",
    ),
    click.option(
        "--row-deadline",
        type=click.FloatRange(min=1),
        default=JOB_DEFAULTS.row_deadline_s,
        show_default=True,
        help="Seconds of retrying per request at most.",
    ),
    click.option(
        "--breaker-min",
        type=click.IntRange(min=1),
        default=JOB_DEFAULTS.breaker_min,
        show_default=True,
        help="Requests before the failure-share breaker may trip.",
    ),
    click.option(
        "--breaker-ratio",
        type=click.FloatRange(0, 1),
        default=JOB_DEFAULTS.breaker_ratio,
        show_default=True,
        help="Failure share that aborts the job.",
    ),
    click.option(
        "--chunk-requests",
        type=click.IntRange(min=1),
        default=DEFAULTS.chunk_requests,
        show_default=True,
        help="Requests per Celery message.",
    ),
    click.option(
        "--skip-invalid",
        is_flag=True,
        help="Queue the valid rows and record the invalid ones as invalid.",
    ),
    all_errors_option,
    files_argument,
    project_option,
    region_option,
    rate_option,
    max_tags_option,
    keep_option,
    click.option(
        "--read",
        type=click.Choice([read.value for read in Read]),
        default=JOB_DEFAULTS.read.value,
        show_default=True,
        help="How plan and --backup read the tags: auto reads in pages of the tag query "
        "(1,000 images a call) where that costs fewer calls than one read per image; pages "
        "always; image one read per image. --match-values always reads per image.",
    ),
)

# The options of a deleting job that make it reversible and ask before it starts.
SAFETY_OPTIONS = (
    click.option(
        "--backup",
        is_flag=True,
        help="Read each image's tags first and keep the values of the keys deleted, so that "
        "`tagsweep undo JOB` can put them back (each image costs one more call).",
    ),
    click.option(
        "--match-values",
        is_flag=True,
        help="With --backup: delete a key only when its current value is the CSV's; other "
        "rows end value_differs and are not sent.",
    ),
    click.option(
        "--confirm-above",
        type=click.IntRange(min=0),
        default=DEFAULT_CONFIRM_ABOVE,
        show_default=True,
        help="On a terminal, ask before queueing a job of more rows than this.",
    ),
    click.option("--yes", "-y", is_flag=True, help="Do not ask; queue the job."),
)


def job_request(
    *, mode: Mode = Mode.DELETE, safety: bool = True
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Declare a job's options (``safety``: and ``SAFETY_OPTIONS``) on a command, which gets
    them as one ``request: JobRequest`` of ``mode`` and its other options as they are."""

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(command)
        def with_request(**params: Any) -> R:
            return command(request=request_from(params, mode=mode), **params)

        declared = (*JOB_OPTIONS, *SAFETY_OPTIONS) if safety else JOB_OPTIONS
        for declare in reversed(declared):
            with_request = declare(with_request)
        return with_request

    return decorate


def request_from(params: dict[str, Any], *, mode: Mode) -> JobRequest:
    """The request the job's options in ``params`` make; they are taken out of ``params``."""
    backup, match_values = (
        bool(params.pop("backup", False)),
        bool(params.pop("match_values", False)),
    )
    if match_values and not backup:
        raise click.UsageError("--match-values needs --backup (the values are read by the backup)")
    options = JobOptions(
        mode=mode,
        backup=backup,
        match_values=match_values,
        endpoint=params.pop("endpoint"),
        api=Api(params.pop("api")),
        tms_endpoint=params.pop("tms_endpoint") or None,
        domain_id=params.pop("domain_id") or None,
        tms_resource_type=params.pop("tms_resource_type") or None,
        rate_per_s=params.pop("rate"),
        max_attempts=params.pop("max_attempts"),
        row_deadline_s=params.pop("row_deadline"),
        breaker_min=params.pop("breaker_min"),
        breaker_ratio=params.pop("breaker_ratio"),
        read=Read(params.pop("read")),
    )
    return JobRequest(
        files=tuple(params.pop("files")),
        options=options,
        project_id=params.pop("project_id"),
        region=params.pop("region"),
        max_tags_per_request=params.pop("max_tags_per_request"),
        chunk_requests=params.pop("chunk_requests"),
        skip_invalid=params.pop("skip_invalid"),
        all_errors=params.pop("all_errors"),
        keep_ms=params.pop("keep_ms"),
        confirm_above=params.pop("confirm_above", DEFAULT_CONFIRM_ABOVE),
        yes=bool(params.pop("yes", False)),
    )


workers_option = click.option(
    "--workers",
    "processes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Local worker processes (each with many calls in flight), started when the job "
    "outlasts the run's own first second or two of work in its own process.",
)
