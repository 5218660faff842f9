"""Click options shared by the commands that read CSV files and make jobs."""

from __future__ import annotations

from collections.abc import Callable

import click
from click.decorators import FC

from producer.batching import DEFAULT_MAX_TAGS_PER_REQUEST
from producer.retention import keep_option

DEFAULT_RATE_PER_S = 50.0
DEFAULT_CONFIRM_ABOVE = 1000

files_argument = click.argument("files", nargs=-1, required=True, metavar="FILE...")
project_option = click.option(
    "--project-id",
    envvar="HUAWEICLOUD_SDK_PROJECT_ID",
    help="Project of rows without a project_id [env HUAWEICLOUD_SDK_PROJECT_ID].",
)
region_option = click.option(
    "--region", envvar="TAGSWEEP_REGION", help="Region of rows without one [env TAGSWEEP_REGION]."
)


def _rate_option(help_text: str) -> Callable[[FC], FC]:
    return click.option(
        "--rate",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_RATE_PER_S,
        show_default=True,
        envvar="TAGSWEEP_RATE",
        help=help_text + " [env TAGSWEEP_RATE].",
    )


rate_option = _rate_option("Requests/s for the whole job, all workers together")
estimate_rate_option = _rate_option(
    "Requests/s to estimate the job's time with (validate sends nothing)"
)


def report_option(
    default_text: str, default: str | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
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


max_tags_option = click.option(
    "--max-tags-per-request",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TAGS_PER_REQUEST,
    show_default=True,
    help="An image with more tags is split into several requests.",
)


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
        keep_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def safety_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options of a deleting job that make it reversible and ask before it starts."""
    decorators = [
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
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
