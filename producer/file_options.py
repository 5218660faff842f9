"""Click options of the commands that read CSV files, ``validate`` among them, which needs no
other: kept apart from ``producer.options`` (a job's options), whose defaults import the job
store and with it the Redis client (100 ms and 9 MB of every validate: bench/validate.py)."""

from __future__ import annotations

from collections.abc import Callable

import click
from click.decorators import FC

from producer.batching import DEFAULT_MAX_TAGS_PER_REQUEST
from worker.jobs import Api, JobOptions

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
        default=JobOptions().rate_per_s,
        show_default=True,
        envvar="TAGSWEEP_RATE",
        help=help_text + " [env TAGSWEEP_RATE].",
    )


rate_option = _rate_option("Requests/s for the whole job, all workers together")
estimate_rate_option = _rate_option(
    "Requests/s to estimate the job's time with (validate sends nothing)"
)


max_tags_option = click.option(
    "--max-tags-per-request",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TAGS_PER_REQUEST,
    show_default=True,
    help="An image with more tags is split into several requests.",
)

all_errors_option = click.option(
    "--all-errors",
    is_flag=True,
    help="A line for every invalid row, even when most rows of a file share one mistake "
    "(told once, with its count, by default).",
)

api_option = click.option(
    "--api",
    type=click.Choice([api.value for api in Api]),
    default=JobOptions().api.value,
    show_default=True,
    help="v1 batch delete; v2 tags/action for clouds without the v1 path; tms: TMS batch "
    "delete, up to 20 images a call, BY KEY ONLY (a key goes whatever its value; "
    "--match-values narrows to rows whose value is the CSV's); auto: TMS for the keys it "
    "takes, IMS v1 for the rest, both at once.",
)
