"""select's listing: calls under the shared limiter with the workers' retries, passes until the
listing holds still. An in-process simulator over loopback HTTP, a real Redis, no real sleep."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from producer.listing import Caller, ListingFailed, Pass, distrust, list_project
from simulator.query import CHURN_KEY
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, Clock, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials
from worker.cloud.query import ImageQuery, Resource, TagTerm
from worker.jobs import JobOptions
from worker.limits.limiter import SharedRateLimiter

QUERY = ImageQuery(tags=(TagTerm("env", ("staging",)),))
IMAGES = [new_image_id() for _ in range(25)]


class Seen:
    """Records what the listing shows."""

    def __init__(self) -> None:
        self.passes: list[int] = []
        self.pages: list[int] = []
        self.changes: list[str] = []

    def start_pass(self, project_id: str, number: int, count: int) -> None:
        self.passes.append(count)

    def page(self, images: int) -> None:
        self.pages.append(images)

    def changed(self, project_id: str, reason: str) -> None:
        self.changes.append(reason)


@pytest.fixture
async def server(start_sim: Callable[..., Any], tmp_path: Path) -> Any:
    rows = [{"image_id": i, "key": "env", "value": "staging"} for i in IMAGES]
    rows.append({"image_id": new_image_id(), "key": "env", "value": "prod"})
    return await start_sim(write_csv(tmp_path / "s.csv", rows, ["image_id", "key", "value"]))


@dataclass
class RecordingCaller(Caller):
    """A caller that keeps the backoff sleeps it was asked for (not the limiter's waits)."""

    sleeps: list[float] = field(default_factory=list)


@pytest.fixture
async def make_caller(server: Any, aredis: Any) -> AsyncIterator[Callable[..., RecordingCaller]]:
    async with aiohttp.ClientSession() as session:
        auth = AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
        client = ImsClient(session, endpoint=server.url, auth=auth)

        clock = Clock()

        def make(**policy: Any) -> RecordingCaller:
            sleeps: list[float] = []

            async def sleep(delay_s: float) -> None:
                sleeps.append(delay_s)

            key = "tagsweep:rate:test-select"
            # The limiter's waits for a send slot move its clock; backoffs are recorded apart.
            limiter = SharedRateLimiter(aredis, key, sleep=clock.sleep, clock_ms=clock)
            options = JobOptions(rate_per_s=1000, **policy)
            return RecordingCaller(
                client, limiter, options, sleep=sleep, rng=random.Random(3), sleeps=sleeps
            )

        yield make


async def test_a_steady_listing_takes_one_pass_of_count_then_pages(
    make_caller: Callable[..., RecordingCaller],
) -> None:
    """25 images in pages of 10: one count, three pages, every image once, in order."""
    caller, seen = make_caller(), Seen()
    listing = await list_project(caller, TEST_PROJECT, QUERY, progress=seen, page_size=10)
    assert [r.image_id for r in listing.images] == IMAGES
    assert (listing.pages, listing.passes, caller.calls) == (3, 1, 4)
    assert seen.passes == [25]
    assert seen.pages == [10, 10, 5]


async def test_server_errors_are_retried_with_backoff_up_to_the_attempt_cap(
    make_caller: Callable[..., RecordingCaller], server: Any
) -> None:
    """Every call 503: three attempts, two backoff sleeps (injected), then a one-line failure."""
    server.sim.fail_rates = {503: 1.0}
    caller = make_caller(max_attempts=3)
    with pytest.raises(ListingFailed) as failed:
        await list_project(caller, TEST_PROJECT, QUERY, progress=Seen(), page_size=10)
    assert str(failed.value).startswith(f"the count of project {TEST_PROJECT} failed: 503")
    assert str(failed.value).endswith("(after 3 attempt(s))")
    assert caller.calls == 3
    assert caller.retries == 2
    sleeps = caller.sleeps
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0  # full jitter: random(0, 0.5 * 2**1)
    assert 0 <= sleeps[1] <= 2.0


async def test_a_429_cuts_the_shared_rate_and_is_retried(
    make_caller: Callable[..., RecordingCaller], server: Any
) -> None:
    """Throttled calls report to the shared limiter (the workers' schedule) and go again."""
    server.sim.fail_rates = {429: 0.5}
    server.sim.rng.seed(4)
    caller = make_caller()
    listing = await list_project(caller, TEST_PROJECT, QUERY, progress=Seen(), page_size=10)
    assert len(listing.images) == 25
    assert server.sim.stats.by_status[429] == caller.retries > 0
    assert caller.limiter.effective_rate_per_s < 1000


async def test_images_added_while_paging_make_a_second_pass_that_must_agree(
    make_caller: Callable[..., RecordingCaller], server: Any
) -> None:
    """Images added after the first two pages: the pass is not trusted even though it saw
    them all (offset paging over additions at the end repeats nothing); the next one agrees."""
    churn = server.runner.app[CHURN_KEY]
    churn.tags, churn.per_page, churn.pages = {"env": "staging"}, 1, 2
    caller, seen = make_caller(), Seen()
    listing = await list_project(caller, TEST_PROJECT, QUERY, progress=seen, page_size=10)
    assert len(listing.images) == 27
    assert {r.image_id for r in listing.images} == set(IMAGES) | set(churn.added)
    assert seen.passes == [25, 27]
    assert seen.changes == ["total_count changed during paging (25, then 27)"]
    assert listing.passes == 2


def test_a_pass_is_trusted_only_when_whole_and_like_the_one_before() -> None:
    """Totals, distinct images against the count, and agreement with the previous pass."""
    one = Resource("a", "n", ())
    two = Resource("b", "n", ())
    steady = Pass(2, totals=[2, 2], images={"a": one, "b": two})
    assert distrust(steady, None) is None
    assert distrust(steady, Pass(2, totals=[2], images={"a": one, "b": two})) is None
    other = Pass(2, totals=[2], images={"a": one, "c": two})
    assert distrust(steady, other) == "this pass differs from the one before"
    short = Pass(3, totals=[3, 3], images={"a": one, "b": two})
    assert distrust(short, None) == "the pages held 2 distinct images for a count of 3"
    repeated = Pass(2, totals=[2, 2], images={"a": one, "b": two}, repeated=1)
    assert distrust(repeated, None) is not None
