"""The simulator's query-images-by-tag API: filter semantics, limits, paging and count."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.ims import BadRequest
from simulator.query import Query, parse_query
from tests.helpers import TEST_AK, TEST_PROJECT, TEST_SK, new_image_id, write_csv
from worker.cloud.auth import AkSkAuth
from worker.cloud.client import ImsClient
from worker.cloud.credentials import AkSkCredentials
from worker.cloud.outcomes import OutcomeKind
from worker.cloud.query import ImageQuery, TagTerm


def q(**body: Any) -> Query:
    body.setdefault("action", "count")
    return parse_query(json.dumps(body).encode())


def tag(key: str, *values: str) -> dict[str, object]:
    return {"key": key, "values": list(values)}


STAGING = {"env": "staging", "tmp-a": "1"}
PROD = {"env": "prod", "owner": "ops"}
BARE: dict[str, str] = {}


def test_tags_needs_every_key_and_one_of_each_keys_values() -> None:
    """An empty values list accepts any value of the key."""
    query = q(tags=[tag("env", "staging", "dev"), tag("tmp-a")])
    assert query.matches(STAGING, "n")
    assert not query.matches(PROD, "n")
    assert not query.matches({"env": "staging"}, "n")
    assert not query.matches(BARE, "n")


def test_tags_any_needs_one_of_the_keys() -> None:
    """One matching term is enough; no term matching excludes the image."""
    query = q(tags_any=[tag("owner", "ops"), tag("tmp-a")])
    assert query.matches(STAGING, "n")
    assert query.matches(PROD, "n")
    assert not query.matches({"owner": "dev"}, "n")
    assert not query.matches(BARE, "n")


def test_not_tags_excludes_images_that_have_all_the_keys() -> None:
    """Only an image holding every listed tag is excluded."""
    query = q(not_tags=[tag("env", "staging"), tag("tmp-a")])
    assert not query.matches(STAGING, "n")
    assert query.matches({"env": "staging"}, "n")
    assert query.matches(PROD, "n")
    assert query.matches(BARE, "n")


def test_not_tags_any_excludes_images_that_have_any_of_the_keys() -> None:
    """One listed tag present is enough to exclude."""
    query = q(not_tags_any=[tag("owner"), tag("env", "staging")])
    assert not query.matches(STAGING, "n")
    assert not query.matches(PROD, "n")
    assert query.matches({"env": "dev"}, "n")
    assert query.matches(BARE, "n")


def test_without_any_tag_selects_untagged_images_and_ignores_tag_filters() -> None:
    """The tag filters are ignored, the name filter is not."""
    query = q(without_any_tag=True, tags=[tag("env")])
    assert query.matches(BARE, "web-1")
    assert not query.matches(STAGING, "web-1")
    named = q(without_any_tag=True, matches=[{"key": "resource_name", "value": "web"}])
    assert named.matches(BARE, "my-web-1")
    assert not named.matches(BARE, "db-1")


def test_matches_resource_name_is_a_case_sensitive_substring() -> None:
    """The name contains the value; combined with tag filters by AND."""
    query = q(matches=[{"key": "resource_name", "value": "web"}], tags=[tag("env")])
    assert query.matches(STAGING, "old-web-image")
    assert not query.matches(STAGING, "old-WEB-image")
    assert not query.matches(BARE, "web")


def test_limit_and_offset_are_strings_with_a_default_limit_of_ten() -> None:
    """The defaults, and the bounds of limit (1 to 1000)."""
    assert q(action="filter").limit == 10
    assert q(action="filter", limit="1000", offset="2000").offset == 2000
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": 5}, {"offset": "-1"}):
        with pytest.raises(BadRequest):
            q(action="filter", **bad)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "Filter"}, "action must be filter or count"),
        ({"tags": []}, "tags must be a non-empty list"),
        ({"tags_any": [tag(f"k{i}") for i in range(11)]}, "at most 10 keys (11 given)"),
        ({"not_tags": [tag("k", *map(str, range(11)))]}, "more than 10 values"),
        ({"not_tags_any": [tag("k", "a", "a")]}, "values of key 'k' must be unique"),
        ({"tags": [tag("k"), tag("k", "b")]}, "tag keys must be unique"),
        ({"tags": [tag(" ")]}, "non-blank key"),
        ({"matches": [{"key": "resource_id", "value": "x"}]}, "only key supported"),
        ({"without_any_tag": "yes"}, "without_any_tag must be true or false"),
    ],
)
def test_bodies_beyond_the_limits_are_refused_with_a_message_naming_the_rule(
    body: dict[str, Any], message: str
) -> None:
    """Each limit has its own message."""
    body.setdefault("action", "count")
    with pytest.raises(BadRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_query(json.dumps(body).encode())


def test_ten_keys_of_ten_values_are_accepted() -> None:
    """The limits themselves are allowed."""
    terms = [tag(f"k{i}", *(f"v{j}" for j in range(10))) for i in range(10)]
    assert len(q(tags=terms, not_tags_any=terms).tags) == 10


# Over HTTP: signed by the worker's client, answered by the simulator.


async def test_filter_pages_through_every_match_and_count_agrees(
    start_sim: Callable[..., Any], tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """25 matching images in pages of 10 (the default limit is not used: limit 10 is sent)."""
    staging = [new_image_id() for _ in range(25)]
    rows = [{"image_id": i, "key": "env", "value": "staging"} for i in staging]
    rows += [{"image_id": new_image_id(), "key": "env", "value": "prod"} for _ in range(7)]
    server = await start_sim(write_csv(tmp_path / "s.csv", rows, ["image_id", "key", "value"]))
    client = ImsClient(
        session, endpoint=server.url, auth=AkSkAuth(AkSkCredentials(TEST_AK, TEST_SK))
    )
    query = ImageQuery(tags=(TagTerm("env", ("staging",)),))
    outcome, counted = await client.query_images(TEST_PROJECT, query.body("count"))
    assert outcome.kind is OutcomeKind.OK
    assert counted is not None
    assert counted.total_count == 25
    assert counted.resources == ()
    seen: list[str] = []
    for offset in (0, 10, 20, 30):
        outcome, page = await client.query_images(
            TEST_PROJECT, query.body("filter", limit=10, offset=offset)
        )
        assert outcome.kind is OutcomeKind.OK
        assert page is not None
        assert page.total_count == 25
        seen += [r.image_id for r in page.resources]
    assert seen == staging
    outcome, _ = await client.query_images(TEST_PROJECT, b'{"action":"filter","limit":"0"}')
    assert outcome.kind is OutcomeKind.REJECTED
    assert outcome.http_status == 400
    assert "limit must be 1 to 1000" in (outcome.error_message or "")


async def test_the_query_is_signed_like_every_call(
    start_sim: Callable[..., Any], tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """A wrong SK is refused by the gateway before the API answers."""
    server = await start_sim(None)
    client = ImsClient(
        session, endpoint=server.url, auth=AkSkAuth(AkSkCredentials(TEST_AK, "wrong"))
    )
    outcome, page = await client.query_images(TEST_PROJECT, ImageQuery().body("count"))
    assert outcome.kind is OutcomeKind.SIGNATURE_FAILED
    assert page is None
