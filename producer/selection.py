"""What ``tagsweep select`` asks for: the query from its filter options, and which tags of a
matched image become rows of the cleanup CSV."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from producer.errors import SelectionRefused
from worker.cloud.query import ImageQuery, Resource, TagTerm

CSV_COLUMNS = ("image_id", "key", "value", "project_id")
# The API's filters, as select's options name them.
OPTION_OF = {
    "tags": "--tag",
    "tags_any": "--tag-any",
    "not_tags": "--not-tag",
    "not_tags_any": "--not-tag-any",
}


def parse_term(option: str, text: str) -> TagTerm:
    """``KEY`` (any value) or ``KEY=V1,V2`` (one of these values; ``KEY=`` is the empty value)."""
    key, sep, values = text.partition("=")
    if not key.strip():
        raise SelectionRefused(f"{option} {text!r}: the key is empty")
    return TagTerm(key, tuple(values.split(",")) if sep else ())


def parse_terms(option: str, texts: tuple[str, ...]) -> tuple[TagTerm, ...]:
    """Each text a term; ``K1,K2`` (no ``=``) names two keys, as repeating the option would:
    taken as one key holding a comma, it matched nothing, in silence."""
    return tuple(
        parse_term(option, part)
        for text in texts
        for part in (text.split(",") if "=" not in text else [text])
    )


def build_query(
    *,
    tags: tuple[str, ...] = (),
    tags_any: tuple[str, ...] = (),
    not_tags: tuple[str, ...] = (),
    not_tags_any: tuple[str, ...] = (),
    without_any_tag: bool = False,
    name_contains: str | None = None,
) -> ImageQuery:
    """The query of select's filter options; refused (one line) beyond the API's limits."""
    if without_any_tag and (tags or tags_any or not_tags or not_tags_any):
        # The API would ignore the tag filters; saying so beats a surprising listing.
        raise SelectionRefused("--without-any-tag cannot be combined with tag filters")
    query = ImageQuery(
        tags=parse_terms(OPTION_OF["tags"], tags),
        tags_any=parse_terms(OPTION_OF["tags_any"], tags_any),
        not_tags=parse_terms(OPTION_OF["not_tags"], not_tags),
        not_tags_any=parse_terms(OPTION_OF["not_tags_any"], not_tags_any),
        without_any_tag=without_any_tag,
        name_contains=name_contains,
    )
    problems = query.problems(OPTION_OF)
    if problems:
        raise SelectionRefused("filter beyond the API's limits: " + "; ".join(problems))
    return query


@dataclass(frozen=True)
class KeyChoice:
    """Which keys of a matched image to remove: named ones, or those a pattern finds."""

    keys: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None

    def wants(self, key: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(key) is not None
        return key in self.keys

    def rows(self, resource: Resource, project_id: str) -> Iterator[tuple[str, str, str, str]]:
        """One CSV row per tag to remove, with the image's current value."""
        for tag in resource.tags:
            if self.wants(tag.key):
                yield resource.image_id, tag.key, tag.value, project_id


def choose_keys(*, keys: str | None, key_pattern: str | None, query: ImageQuery) -> KeyChoice:
    """``--keys K1,K2``, or ``--key-pattern REGEX`` (searched in the key), or the keys of
    ``--tag``."""
    if keys is not None and key_pattern is not None:
        raise SelectionRefused("give --keys or --key-pattern, not both")
    if key_pattern is not None:
        try:
            return KeyChoice(pattern=re.compile(key_pattern))
        except re.error as exc:
            raise SelectionRefused(f"--key-pattern {key_pattern!r}: {exc}") from None
    if keys is not None:
        named = frozenset(k for k in keys.split(",") if k)
        if not named:
            raise SelectionRefused("--keys names no key")
        return KeyChoice(keys=named)
    if not query.tags:
        raise SelectionRefused(
            "which tags to remove? give --keys, --key-pattern, or --tag (its keys are removed)"
        )
    return KeyChoice(keys=frozenset(term.key for term in query.tags))
