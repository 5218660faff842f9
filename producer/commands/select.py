"""``tagsweep select``: the cleanup CSV from an IMS tag query, for validate / plan / run.

The listing is finished before anything is deleted (that is why select writes a file and run
reads it): paging over images whose tags are being deleted would skip some.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from producer.errors import SelectionRefused
from producer.exits import ExitCode
from producer.options import JOB_DEFAULTS
from producer.planning import format_duration
from producer.progress import CountBar
from producer.selection import CSV_COLUMNS, KeyChoice, build_query, choose_keys
from worker.cloud.credentials import CredentialSources, load_credentials
from worker.cloud.query import ImageQuery
from worker.jobs import JobOptions

if TYPE_CHECKING:
    # Imported where used: aiohttp and the worker's runtime would slow every command's start.
    from producer.listing import Caller, Listing
    from worker.runtime import Runtime

TERM = "KEY[=V1,V2...]"


class ShownProgress:
    """select's progress: a bar per pass on a terminal; changes of the listing always said."""

    def __init__(self, *, tty: bool) -> None:
        self.bar = CountBar(tty=tty)

    def start_pass(self, project_id: str, number: int, count: int) -> None:
        again = f", pass {number}" if number > 1 else ""
        self.bar.start(count, f"project {project_id}{again}")

    def page(self, images: int) -> None:
        self.bar.advance(images)

    def changed(self, project_id: str, reason: str) -> None:
        self.bar.close()
        click.echo(f"project {project_id}: {reason}; reading the listing again", err=True)


@click.command(name="select", short_help="Write the cleanup CSV from an IMS tag query.")
@click.option(
    "--project-id",
    "project_ids",
    multiple=True,
    envvar="HUAWEICLOUD_SDK_PROJECT_ID",
    help="Project to query; repeatable [env HUAWEICLOUD_SDK_PROJECT_ID, else the profile's].",
)
@click.option(
    "--region", envvar="TAGSWEEP_REGION", help="The images' region [env TAGSWEEP_REGION]."
)
@click.option("--endpoint", envvar="TAGSWEEP_ENDPOINT", help="IMS base URL [env TAGSWEEP_ENDPOINT]")
@click.option(
    "--tag", "tags", multiple=True, metavar=TERM, help="Images with this tag (all of them)."
)
@click.option("--tag-any", multiple=True, metavar=TERM, help="Images with one of these at least.")
@click.option("--not-tag", multiple=True, metavar=TERM, help="Not images with all of these.")
@click.option("--not-tag-any", multiple=True, metavar=TERM, help="Not images with any of these.")
@click.option("--without-any-tag", is_flag=True, help="Only images without any tag.")
@click.option("--name-contains", metavar="TEXT", help="Only images whose name contains TEXT.")
@click.option("--keys", metavar="K1,K2", help="Remove these keys [default: the keys of --tag].")
@click.option("--key-pattern", metavar="REGEX", help="Remove the keys REGEX finds (search).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    default=JOB_DEFAULTS.rate_per_s,
    show_default=True,
    envvar="TAGSWEEP_RATE",
    help="Calls/s at most, on the schedule jobs of the same endpoint and identity share "
    "[env TAGSWEEP_RATE].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="-",
    help="Where the CSV goes [default: stdout].",
)
def select(
    project_ids: tuple[str, ...],
    region: str | None,
    endpoint: str | None,
    tags: tuple[str, ...],
    tag_any: tuple[str, ...],
    not_tag: tuple[str, ...],
    not_tag_any: tuple[str, ...],
    without_any_tag: bool,
    name_contains: str | None,
    keys: str | None,
    key_pattern: str | None,
    rate: float,
    output: str,
) -> ExitCode:
    """List the images a tag query matches and write image_id,key,value,project_id: one row
    per tag to remove, with the image's current value.

    KEY alone matches any value, and K1,K2 names two keys (as repeating the option would);
    KEY=V1,V2 matches one of these values. The listing is counted,
    then read in pages of 1000 under the shared rate limit with the workers' retries; if it
    changes while read, it is read again until two passes agree. Totals go to stderr.
    Exit code 0: written; 1: no complete listing (nothing written); 2: bad options.

    Redis (the shared rate): REDIS_URL; without it, the private Redis of ./.tagsweep/.
    """
    query = build_query(
        tags=tags,
        tags_any=tag_any,
        not_tags=not_tag,
        not_tags_any=not_tag_any,
        without_any_tag=without_any_tag,
        name_contains=name_contains,
    )
    choice = choose_keys(keys=keys, key_pattern=key_pattern, query=query)
    sources = load_credentials(os.environ)
    projects = tuple(dict.fromkeys(project_ids)) or _profile_project(sources.project_id)
    target = _target(region, endpoint, output)
    return _select(sources, target, projects, query, choice, JobOptions(rate_per_s=rate), output)


def _select(
    sources: CredentialSources,
    target: str,
    projects: tuple[str, ...],
    query: ImageQuery,
    choice: KeyChoice,
    policy: JobOptions,
    output: str,
) -> ExitCode:
    """List, write, print the totals: OK, or INTERRUPTED with nothing written."""
    started = time.monotonic()
    try:
        listings, caller = list_matches(sources, target, projects, query, policy)
        rows = write_csv(listings, choice, output)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: nothing written", err=True)
        return ExitCode.INTERRUPTED
    _print_totals(listings, rows, output, caller, time.monotonic() - started)
    return ExitCode.OK


def _target(region: str | None, endpoint: str | None, output: str) -> str:
    """The IMS endpoint to query; refused without a region or an endpoint, or when the output
    has no directory to go to."""
    if not endpoint and not region:
        raise SelectionRefused("no region: give --region (or TAGSWEEP_REGION) or --endpoint")
    if output != "-" and not Path(output).parent.is_dir():
        raise SelectionRefused(f"{output}: no such directory")
    from worker.cloud.client import ims_endpoint

    return ims_endpoint(region or "", endpoint)


def _profile_project(project_id: str | None) -> tuple[str, ...]:
    if not project_id:
        raise SelectionRefused("no project: give --project-id or set HUAWEICLOUD_SDK_PROJECT_ID")
    return (project_id,)


def list_matches(
    sources: CredentialSources,
    endpoint: str,
    projects: tuple[str, ...],
    query: ImageQuery,
    policy: JobOptions,
) -> tuple[list[Listing], Caller]:
    """The listing of every project, through a worker's runtime (client, auth, shared limiter)
    against the Redis the rate is shared in; ``ListingFailed`` (nothing written) when it fails."""
    from producer.connection import private_or_shared_url
    from worker.runtime import Runtime
    from worker.settings import Settings

    with private_or_shared_url() as redis_url:
        runtime = Runtime(dataclasses.replace(Settings.from_env(), redis_url=redis_url), sources)
        try:
            return runtime.run(_list_all(runtime, endpoint, projects, query, policy))
        finally:
            runtime.run(runtime.aclose())
            runtime.loop.close()


async def _list_all(
    runtime: Runtime,
    endpoint: str,
    projects: tuple[str, ...],
    query: ImageQuery,
    policy: JobOptions,
) -> tuple[list[Listing], Caller]:
    from producer.listing import Caller, list_project

    context = await runtime.context()
    client = context.client_for(endpoint)
    caller = Caller(client, context.limiter_for(endpoint, client.identity), policy)
    progress = ShownProgress(tty=sys.stderr.isatty())
    listings = []
    try:
        for project_id in projects:
            listings.append(await list_project(caller, project_id, query, progress=progress))
    finally:
        progress.bar.close()
    return listings, caller


def write_csv(listings: list[Listing], choice: KeyChoice, output: str) -> int:
    """Write the rows; return how many. A regular file appears whole (written aside, then
    renamed over); anything else (``-``, a symlink, a pipe, a device) is written in place,
    never replaced."""
    target = Path(output)
    if output == "-":
        return _write_rows(listings, choice, sys.stdout)
    if target.is_symlink() or (target.exists() and not target.is_file()):
        with target.open("w", encoding="utf-8", newline="") as out:
            return _write_rows(listings, choice, out)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            rows = _write_rows(listings, choice, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return rows


def _write_rows(listings: list[Listing], choice: KeyChoice, out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for listing in listings:
        for resource in listing.images:
            for row in choice.rows(resource, listing.project_id):
                writer.writerow(row)
                rows += 1
    return rows


def _print_totals(
    listings: list[Listing], rows: int, output: str, caller: Caller, elapsed_s: float
) -> None:
    images = sum(len(listing.images) for listing in listings)
    pages = sum(listing.pages for listing in listings)
    passes = sum(listing.passes for listing in listings)
    lines = [
        f"images matched  {images:,}",
        f"rows written    {rows:,} to {'stdout' if output == '-' else output}",
        f"pages           {pages:,} in {passes} pass(es) over {len(listings)} project(s)",
        f"calls           {caller.calls:,} ({caller.retries:,} retried)",
        f"time            {format_duration(elapsed_s)}",
    ]
    click.echo("\n".join(lines), err=True)
