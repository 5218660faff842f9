"""Listing every image a query matches, completely, before anything is deleted.

Offset paging over a set that changes between pages skips or repeats images. So a pass counts
first, pages through (1000 a page), and notes every ``total_count`` the pages report; a pass
whose totals all agree and whose images number the count is consistent. A consistent first pass
is the listing. Otherwise the listing is read again until two passes in a row give the same
images and tags (the later one consistent), or ``max_passes`` have been read.

Each call waits for a permit of the shared rate limit of its endpoint and identity (the one the
workers use, through Redis) and is retried like a worker's calls: 429, 5xx, timeouts and
dropped connections with the same backoff, up to the same attempt cap and deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from producer.errors import ListingFailed
from worker.cloud.client import ImsClient
from worker.cloud.outcomes import Outcome
from worker.cloud.query import PAGE_LIMIT, ImageQuery, QueryPage, Resource
from worker.jobs import JobOptions
from worker.limits.limiter import SharedRateLimiter, Throttling
from worker.limits.retrying import Sent, call_under_rate

DEFAULT_MAX_PASSES = 5


@dataclass
class Caller:
    """Makes one query call under the shared rate limit, retrying what is worth it
    (``worker.limits.retrying``, as the workers' calls are)."""

    client: ImsClient
    limiter: SharedRateLimiter
    policy: JobOptions = field(default_factory=JobOptions)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    calls: int = 0
    retries: int = 0

    async def call(self, project_id: str, body: bytes, *, what: str) -> QueryPage:
        """The answer to ``body``; ``ListingFailed`` (saying what failed) when there is none."""
        query = _QueryCall(self, project_id, body)
        sent = await call_under_rate(
            self.limiter,
            query,
            policy=self.policy,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.rng,
        )
        if query.page is not None:
            return query.page
        assert isinstance(sent, Sent)  # a listing is never stopped
        failure = _describe(sent.outcome, sent.attempts)
        raise ListingFailed(f"{what} of project {project_id} failed: {failure}")


class _QueryCall:
    """One query call as ``call_under_rate`` makes it: counted, its page kept."""

    def __init__(self, caller: Caller, project_id: str, body: bytes) -> None:
        self.caller = caller
        self.project_id = project_id
        self.body = body
        self.page: QueryPage | None = None

    async def ready(self) -> bool:
        return True

    async def stopped(self) -> bool:
        return False

    async def call(self) -> Outcome:
        outcome, self.page = await self.caller.client.query_images(self.project_id, self.body)
        self.caller.calls += 1
        return outcome

    async def throttled(self, throttling: Throttling) -> None:
        return None

    def retrying(self, outcome: Outcome, attempt: int, delay_s: float) -> None:
        self.caller.retries += 1


def _describe(outcome: Outcome, attempts: int) -> str:
    status = outcome.http_status if outcome.http_status is not None else outcome.kind.value
    code = f" {outcome.error_code}" if outcome.error_code else ""
    message = f": {outcome.error_message}" if outcome.error_message else ""
    return f"{status}{code}{message} (after {attempts} attempt(s))"


@dataclass
class Pass:
    """One reading of the listing: the count, every total the pages reported, the images."""

    count: int
    totals: list[int] = field(default_factory=list)
    images: dict[str, Resource] = field(default_factory=dict)
    repeated: int = 0
    pages: int = 0

    @property
    def consistent(self) -> bool:
        """Nothing changed while it was read, as far as the answers tell."""
        return (
            all(total == self.count for total in self.totals)
            and not self.repeated
            and len(self.images) == self.count
        )

    def same_images(self, other: Pass) -> bool:
        return self.images == other.images


class Progress(Protocol):
    """Told what a listing does, to show it."""

    def start_pass(self, project_id: str, number: int, count: int) -> None:
        """A pass begins; ``count`` images match now."""

    def page(self, images: int) -> None:
        """A page of ``images`` images was read."""

    def changed(self, project_id: str, reason: str) -> None:
        """The pass cannot be trusted (``reason``); the listing is read again."""


async def read_pass(
    caller: Caller,
    project_id: str,
    query: ImageQuery,
    *,
    number: int,
    progress: Progress,
    page_size: int,
    count: int | None = None,
) -> Pass:
    """Count (unless the caller just did: ``count``), then read every page once."""
    if count is None:
        count = (await caller.call(project_id, query.body("count"), what="the count")).total_count
    reading = Pass(count)
    progress.start_pass(project_id, number, reading.count)
    offset = 0
    while offset < max([reading.count, *reading.totals]):
        body = query.body("filter", limit=page_size, offset=offset)
        page = await caller.call(project_id, body, what=f"the page at offset {offset}")
        reading.pages += 1
        reading.totals.append(page.total_count)
        for resource in page.resources:
            if resource.image_id in reading.images:
                reading.repeated += 1
            reading.images[resource.image_id] = resource
        progress.page(len(page.resources))
        if not page.resources:
            break
        offset += len(page.resources)
    return reading


def distrust(current: Pass, previous: Pass | None) -> str | None:
    """Why this pass cannot be the listing, or None when it can."""
    changed = [total for total in current.totals if total != current.count]
    if changed:
        return f"total_count changed during paging ({current.count:,}, then {changed[-1]:,})"
    if current.repeated or len(current.images) != current.count:
        return (
            f"the pages held {len(current.images):,} distinct images "
            f"for a count of {current.count:,}"
        )
    if previous is not None and not current.same_images(previous):
        return "this pass differs from the one before"
    return None


@dataclass
class Listing:
    """The settled listing of one project, and what it took."""

    project_id: str
    images: list[Resource]
    pages: int
    passes: int


async def list_project(
    caller: Caller,
    project_id: str,
    query: ImageQuery,
    *,
    progress: Progress,
    max_passes: int = DEFAULT_MAX_PASSES,
    page_size: int = PAGE_LIMIT,
    count: int | None = None,
) -> Listing:
    """Read passes until one can be trusted (see the module's docstring); ``count``: what a
    count the caller has just made said, taken as the first pass's."""
    previous: Pass | None = None
    pages, reason = 0, ""
    for number in range(1, max_passes + 1):
        if previous is not None:
            progress.changed(project_id, reason)
        current = await read_pass(
            caller,
            project_id,
            query,
            number=number,
            progress=progress,
            page_size=page_size,
            count=count if number == 1 else None,
        )
        pages += current.pages
        doubt = distrust(current, previous)
        if doubt is None:
            return Listing(project_id, list(current.images.values()), pages, number)
        previous, reason = current, doubt
    raise ListingFailed(
        f"could not get a stable listing of project {project_id} in {max_passes} passes "
        f"(the last: {reason}); nothing written"
    )
