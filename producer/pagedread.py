"""Reading a job's live tags in pages: IMS's tag query (1,000 images a call) instead of one GET
per image, for the jobs that read before they act (``plan``, ``--backup``).

Per project, one ``count`` call says how many images hold any of the job's keys (``tags_any``,
any value); the listing costs that many images / 1,000 pages more. When that is fewer calls than
the job has images there, the project is listed completely (``producer.listing``, the same
consistent passes ``select`` reads) and what each listed image holds for each of the job's keys
is kept as its rows' observation (``ResultStore.observe``: the record a worker's own read
writes). Workers then skip their read for rows already observed (``worker.engine.batch``).

Why the command line and not the workers: the listing must be complete before anything is
deleted (offset paging over a set that shrinks skips images), which is one reader's job, and
``select`` already does exactly this here, under the workers' shared limiter and retries.

An image the listing does not hold is either without the keys or gone: only a GET tells
``absent`` from ``image_not_found``, so such images are read per image by the workers, as
before, and the results are those of per-image reads. A project with more distinct keys than
one query filter takes (10), or with few images for its tagged total, is read per image.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from producer.errors import ListingFailed
from producer.listing import Caller, Listing, list_project
from producer.store import JobStore
from worker.cloud.credentials import CredentialSources, load_credentials
from worker.cloud.query import MAX_KEYS, PAGE_LIMIT, ImageQuery, TagTerm
from worker.errors import CredentialsError
from worker.jobs import JobOptions, Read
from worker.model import ImageBatch
from worker.runtime import Runtime
from worker.settings import Settings

if TYPE_CHECKING:
    import redis


@dataclass
class ProjectTags:
    """What a job asks of one project: its keys, and per image the rows of each key by chunk."""

    region: str
    project_id: str
    keys: set[str] = field(default_factory=set)
    # image id -> [(chunk, key, first ref)]
    rows: dict[str, list[tuple[int, str, int]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, chunk: int, batch: ImageBatch) -> None:
        for tag in batch.tags:
            self.keys.add(tag.key)
            self.rows[batch.image_id].append((chunk, tag.key, tag.refs[0]))


def gather(chunks: Iterable[tuple[int, list[ImageBatch]]]) -> list[ProjectTags]:
    """The job's projects with their keys and rows (retry chunks' batches are not taken)."""
    projects: dict[tuple[str, str], ProjectTags] = {}
    for number, batches in chunks:
        for batch in batches:
            if batch.origin is not None:
                continue
            where = (batch.region, batch.project_id)
            project = projects.setdefault(where, ProjectTags(*where))
            project.add(number, batch)
    return list(projects.values())


def pages_pay(images: int, tagged: int, read: Read) -> bool:
    """Whether listing ``tagged`` images (a count made, then pages) costs fewer calls than
    ``images`` GETs; ``Read.PAGES`` lists whatever it costs."""
    return read is Read.PAGES or math.ceil(tagged / PAGE_LIMIT) < images


def observations(project: ProjectTags, listing: Listing) -> dict[int, dict[int, str | None]]:
    """Per chunk, ref -> the value the listing shows for the row's key (None: the image has
    no such key), for the images the listing holds."""
    found: dict[int, dict[int, str | None]] = defaultdict(dict)
    for resource in listing.images:
        wanted = project.rows.get(resource.image_id)
        if not wanted:
            continue
        held = {tag.key: tag.value for tag in resource.tags}
        for chunk, key, ref in wanted:
            found[chunk][ref] = held.get(key)
    return found


class _Quiet:
    """A listing shows nothing here: the plan line says what it cost."""

    def start_pass(self, project_id: str, number: int, count: int) -> None:
        return None

    def page(self, images: int) -> None:
        return None

    def changed(self, project_id: str, reason: str) -> None:
        return None


async def _read_project(
    runtime: Runtime, job_id: str, options: JobOptions, project: ProjectTags
) -> str:
    """Read one project in pages where that pays; the line that says what was done."""
    from worker.cloud.client import ims_endpoint

    context = await runtime.context()
    endpoint = ims_endpoint(project.region, options.endpoint)
    client = context.client_for(endpoint)
    caller = Caller(client, context.limiter_for(endpoint, client.identity), options)
    query = ImageQuery(tags_any=tuple(TagTerm(key) for key in sorted(project.keys)))
    counted = await caller.call(project.project_id, query.body("count"), what="the count")
    images = len(project.rows)
    if not pages_pay(images, counted.total_count, options.read):
        return (
            f"read        project {project.project_id}: per image ({images:,} images; "
            f"{counted.total_count:,} hold these keys)"
        )
    listing = await list_project(
        caller, project.project_id, query, progress=_Quiet(), count=counted.total_count
    )
    for chunk, values in observations(project, listing).items():
        await context.store.observe(job_id, values, chunk=chunk)
    return (
        f"read        project {project.project_id}: in pages ({caller.calls:,} calls for "
        f"{images:,} images; the rest, if any, per image)"
    )


async def _read_all(
    runtime: Runtime, job_id: str, options: JobOptions, projects: list[ProjectTags]
) -> list[str]:
    lines = []
    for project in projects:
        if len(project.keys) > MAX_KEYS:
            lines.append(
                f"read        project {project.project_id}: per image "
                f"({len(project.keys)} keys; one query takes {MAX_KEYS})"
            )
            continue
        lines.append(await _read_project(runtime, job_id, options, project))
    return lines


def read_in_pages(
    redis_url: str,
    sources: CredentialSources,
    job_id: str,
    options: JobOptions,
    chunks: Iterable[tuple[int, list[ImageBatch]]],
) -> list[str]:
    """Read the job's projects in pages where that pays, keeping what was found as the rows'
    observations; a line per project saying what was done. ``ListingFailed`` when a listing
    could not be read (nothing is lost: the workers read what was not observed)."""
    projects = gather(chunks)
    runtime = Runtime(dataclasses.replace(Settings.from_env(), redis_url=redis_url), sources)
    try:
        return runtime.run(_read_all(runtime, job_id, options, projects))
    finally:
        runtime.run(runtime.aclose())
        runtime.loop.close()


def read_before_queueing(
    client: redis.Redis, redis_url: str, job_id: str, options: JobOptions, env: Mapping[str, str]
) -> None:
    """Read a new job's tags in pages when it reads first and that pays, saying on stderr what
    it did; without credentials here (a submission for workers elsewhere) or when the listing
    fails, the workers read per image, and the line says so."""
    if not options.reads_in_pages:
        return
    try:
        sources = load_credentials(env)
    except CredentialsError:
        click.echo("read        per image (no credentials here to read in pages)", err=True)
        return
    store = JobStore(client)
    chunks = store.numbered_chunks(job_id, store.next_chunk(job_id))
    try:
        lines = read_in_pages(redis_url, sources, job_id, options, chunks)
    except ListingFailed as exc:
        click.echo(f"read        per image: reading in pages failed ({exc})", err=True)
        return
    for line in lines:
        click.echo(line, err=True)
