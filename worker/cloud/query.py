"""IMS's "query images by tag" call: the filters, their limits, the body, and the answer.

``POST /v2/{project}/images/resource_instances/action`` (docs/ims-api.md). The limits are the
API's own; ``ImageQuery.problems`` names every one a query breaks, so that a command can refuse
it before any call instead of learning it from a 400.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from worker.model import Tag

MAX_KEYS = 10
MAX_VALUES = 10
PAGE_LIMIT = 1000
MAX_NAME_MATCH = 255
QueryAction = Literal["filter", "count"]


@dataclass(frozen=True)
class TagTerm:
    """One key of a tag filter and the values it accepts; no values means any value."""

    key: str
    values: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {"key": self.key, "values": list(self.values)}


@dataclass(frozen=True)
class ImageQuery:
    """The filters of one query; empty ones are left out of the body."""

    tags: tuple[TagTerm, ...] = ()
    tags_any: tuple[TagTerm, ...] = ()
    not_tags: tuple[TagTerm, ...] = ()
    not_tags_any: tuple[TagTerm, ...] = ()
    without_any_tag: bool = False
    name_contains: str | None = None

    def filters(self) -> dict[str, tuple[TagTerm, ...]]:
        return {
            "tags": self.tags,
            "tags_any": self.tags_any,
            "not_tags": self.not_tags,
            "not_tags_any": self.not_tags_any,
        }

    def problems(self, labels: Mapping[str, str] | None = None) -> list[str]:
        """Every API limit this query breaks, one message each (empty when it is fine);
        ``labels`` names the filters as the caller's user knows them (``--tag-any``)."""
        found: list[str] = []
        for name, terms in self.filters().items():
            found.extend(_term_problems((labels or {}).get(name, name), terms))
        if self.name_contains is not None and len(self.name_contains) > MAX_NAME_MATCH:
            found.append(f"the name to match is longer than {MAX_NAME_MATCH} characters")
        return found

    def body(self, action: QueryAction, *, limit: int | None = None, offset: int = 0) -> bytes:
        """The JSON body, serialised once (signed and sent as is); limit and offset are
        strings, as the API wants them, and only sent with ``filter``."""
        document: dict[str, object] = {"action": action}
        for name, terms in self.filters().items():
            if terms:
                document[name] = [term.as_json() for term in terms]
        if self.without_any_tag:
            document["without_any_tag"] = True
        if self.name_contains is not None:
            document["matches"] = [{"key": "resource_name", "value": self.name_contains}]
        if action == "filter":
            document["limit"] = str(limit or PAGE_LIMIT)
            document["offset"] = str(offset)
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _term_problems(name: str, terms: tuple[TagTerm, ...]) -> list[str]:
    found = []
    if len(terms) > MAX_KEYS:
        found.append(f"{name}: {len(terms)} keys, the API takes at most {MAX_KEYS}")
    keys = [term.key for term in terms]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        found.append(f"{name}: key {key!r} given more than once")
    for term in terms:
        if not term.key.strip():
            found.append(f"{name}: a key is empty")
        if len(term.values) > MAX_VALUES:
            found.append(
                f"{name}: key {term.key!r} has {len(term.values)} values, "
                f"the API takes at most {MAX_VALUES}"
            )
        if len(set(term.values)) != len(term.values):
            found.append(f"{name}: key {term.key!r} repeats a value")
    return found


@dataclass(frozen=True, slots=True)
class Resource:
    """One image of a query's answer."""

    image_id: str
    name: str
    tags: tuple[Tag, ...]


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One answer: how many images match now, and (``filter``) this page of them."""

    total_count: int
    resources: tuple[Resource, ...] = ()


def parse_page(raw: bytes) -> QueryPage | None:
    """The answer of a ``filter`` or ``count`` call; None when the bytes are not one."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    total = data.get("total_count")
    items = data.get("resources", [])
    if not isinstance(total, int) or isinstance(total, bool) or not isinstance(items, list):
        return None
    resources = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("resource_id"), str):
            return None
        tags = item.get("tags") or []
        if not isinstance(tags, list):
            return None
        resources.append(
            Resource(
                image_id=item["resource_id"],
                name=str(item.get("resource_name") or ""),
                tags=tuple(
                    Tag(str(t.get("key") or ""), str(t.get("value") or ""))
                    for t in tags
                    if isinstance(t, dict)
                ),
            )
        )
    return QueryPage(total, tuple(resources))
