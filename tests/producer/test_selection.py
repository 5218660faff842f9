"""select's options as a query and a key choice, and the query call's body and answer."""

from __future__ import annotations

import json

import pytest

from producer.selection import SelectionRefused, build_query, choose_keys, parse_term
from worker.cloud.query import ImageQuery, Resource, TagTerm, parse_page
from worker.model import Tag


def test_a_term_is_a_key_alone_or_a_key_with_values() -> None:
    """``KEY`` means any value, ``KEY=`` the empty value, ``KEY=a,b`` one of a and b."""
    assert parse_term("--tag", "env") == TagTerm("env", ())
    assert parse_term("--tag", "env=") == TagTerm("env", ("",))
    assert parse_term("--tag", "env=a,b") == TagTerm("env", ("a", "b"))
    assert parse_term("--tag", "url=a=b") == TagTerm("url", ("a=b",))


def test_limits_are_checked_per_filter_and_named_as_the_options() -> None:
    """Every problem is listed, in one line."""
    with pytest.raises(SelectionRefused) as refused:
        build_query(
            tags=tuple(f"k{n}" for n in range(11)),
            not_tags_any=("env=a,a", "env"),
        )
    message = str(refused.value)
    assert "\n" not in message
    assert "--tag: 11 keys, the API takes at most 10" in message
    assert "--not-tag-any: key 'env' given more than once" in message
    assert "--not-tag-any: key 'env' repeats a value" in message


def test_ten_keys_of_ten_values_are_within_the_limits() -> None:
    """The limits themselves pass."""
    values = ",".join(str(n) for n in range(10))
    query = build_query(tags=tuple(f"k{n}={values}" for n in range(10)))
    assert len(query.tags) == 10


def test_the_keys_to_remove_default_to_the_keys_of_tag() -> None:
    """Without --keys or --key-pattern, the --tag keys; a tag_any-only query must say which."""
    query = build_query(tags=("env=staging", "owner"), tags_any=("tmp",))
    assert choose_keys(keys=None, key_pattern=None, query=query).keys == {"env", "owner"}
    with pytest.raises(SelectionRefused, match="which tags to remove"):
        choose_keys(keys=None, key_pattern=None, query=build_query(tags_any=("tmp",)))


def test_rows_carry_the_current_value_of_each_chosen_key() -> None:
    """A pattern is searched in the key; named keys match whole keys only."""
    image = Resource("id-1", "n", (Tag("tmp-build", "7"), Tag("env", "dev"), Tag("my-tmp-x", "")))
    pattern = choose_keys(keys=None, key_pattern="^tmp-", query=ImageQuery())
    assert list(pattern.rows(image, "p1")) == [("id-1", "tmp-build", "7", "p1")]
    named = choose_keys(keys="env,my-tmp-x,absent", key_pattern=None, query=ImageQuery())
    assert list(named.rows(image, "p1")) == [
        ("id-1", "env", "dev", "p1"),
        ("id-1", "my-tmp-x", "", "p1"),
    ]


def test_the_body_sends_limit_and_offset_as_strings_and_only_given_filters() -> None:
    """As the API wants them; ``count`` carries no page."""
    query = ImageQuery(tags=(TagTerm("env", ("a",)),), name_contains="web")
    assert json.loads(query.body("filter", limit=1000, offset=2000)) == {
        "action": "filter",
        "tags": [{"key": "env", "values": ["a"]}],
        "matches": [{"key": "resource_name", "value": "web"}],
        "limit": "1000",
        "offset": "2000",
    }
    assert json.loads(ImageQuery(without_any_tag=True).body("count")) == {
        "action": "count",
        "without_any_tag": True,
    }


def test_an_answer_that_is_not_a_query_answer_is_none() -> None:
    """The client turns None into a server error, worth another try."""
    assert parse_page(b"<html>proxy</html>") is None
    assert parse_page(b'{"resources": []}') is None
    assert parse_page(b'{"total_count": 2, "resources": [{"resource_name": "x"}]}') is None
    page = parse_page(
        b'{"total_count": 1, "resources": [{"resource_id": "i", "resource_name": "n",'
        b' "resource_detail": {"status": "active"}, "tags": [{"key": "k", "value": null}]}]}'
    )
    assert page is not None
    assert page.resources == (Resource("i", "n", (Tag("k", ""),)),)
