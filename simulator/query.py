"""IMS's "query images by tag" API as the simulator serves it (behind the gateway checks).

``POST /v2/{project}/images/resource_instances/action`` with ``action`` ``filter`` (a page of
matching images, ``limit``/``offset`` as strings) or ``count``. Filters: ``tags`` (every key
listed; per key, any of its values, or any value when the list is empty), ``tags_any`` (one
of them at least), ``not_tags`` (not all of them), ``not_tags_any`` (none of them),
``without_any_tag`` (untagged images only; the tag filters are then ignored), and
``matches`` on ``resource_name`` (the name contains the value). Beyond the API's limits the
answer is 400 with a message saying which. Images keep the store's order, so offset paging
over a set that changes between pages skips or repeats images, as on the real service.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from simulator.ims import BODY_KEY, REQUEST_ID_KEY, STORE_KEY, BadRequest, document
from simulator.responses import IMG_BAD_REQUEST, ims_error
from simulator.state import ImageStore

MAX_KEYS = 10
MAX_VALUES = 10
MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
TAG_FILTERS = ("tags", "tags_any", "not_tags", "not_tags_any")
# One tag filter: (key, accepted values); no values means any value.
TagTerms = tuple[tuple[str, frozenset[str]], ...]


@dataclass(frozen=True)
class Query:
    """One request's filters and page."""

    action: str
    tags: TagTerms = ()
    tags_any: TagTerms = ()
    not_tags: TagTerms = ()
    not_tags_any: TagTerms = ()
    without_any_tag: bool = False
    name_contains: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def matches(self, tags: Mapping[str, str], name: str) -> bool:
        """Whether an image with these tags and this name is in the answer."""
        if self.name_contains is not None and self.name_contains not in name:
            return False
        if self.without_any_tag:
            return not tags
        if self.tags and not all(_has(tags, key, values) for key, values in self.tags):
            return False
        if self.tags_any and not any(_has(tags, key, values) for key, values in self.tags_any):
            return False
        if self.not_tags and all(_has(tags, key, values) for key, values in self.not_tags):
            return False
        return not any(_has(tags, key, values) for key, values in self.not_tags_any)


def _has(tags: Mapping[str, str], key: str, values: frozenset[str]) -> bool:
    return key in tags and (not values or tags[key] in values)


def parse_query(body: bytes) -> Query:
    """The request body as a ``Query``; ``BadRequest`` naming the rule it breaks."""
    doc = document(body)
    action = doc.get("action")
    if action not in ("filter", "count"):  # case-sensitive, as the real API
        raise BadRequest("The action must be filter or count.")
    without = doc.get("without_any_tag", False)
    if not isinstance(without, bool):
        raise BadRequest("without_any_tag must be true or false.")
    terms = {name: _terms(doc, name) for name in TAG_FILTERS}
    return Query(
        action=str(action),
        without_any_tag=without,
        name_contains=_name_match(doc.get("matches")),
        limit=_number(doc, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
        offset=_number(doc, "offset", 0, low=0, high=None),
        **terms,
    )


def _terms(doc: Mapping[str, object], name: str) -> TagTerms:
    given = doc.get(name)
    if given is None:
        return ()
    if not isinstance(given, list) or not given:
        raise BadRequest(f"{name} must be a non-empty list when given.")
    if len(given) > MAX_KEYS:
        raise BadRequest(f"{name}: at most {MAX_KEYS} keys ({len(given)} given).")
    terms: list[tuple[str, frozenset[str]]] = []
    for item in given:
        key = item.get("key") if isinstance(item, dict) else None
        values = item.get("values", []) if isinstance(item, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise BadRequest(f"{name}: every tag needs a non-blank key.")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise BadRequest(f"{name}: the values of key {key!r} must be a list of strings.")
        if len(values) > MAX_VALUES:
            raise BadRequest(f"{name}: key {key!r} has more than {MAX_VALUES} values.")
        if len(set(values)) != len(values):
            raise BadRequest(f"{name}: the values of key {key!r} must be unique.")
        terms.append((key, frozenset(values)))
    if len({key for key, _ in terms}) != len(terms):
        raise BadRequest(f"{name}: tag keys must be unique.")
    return tuple(terms)


def _name_match(matches: object) -> str | None:
    if matches is None:
        return None
    if not isinstance(matches, list) or not matches:
        raise BadRequest("matches must be a non-empty list when given.")
    found: str | None = None
    for item in matches:
        if not isinstance(item, dict) or item.get("key") != "resource_name":
            raise BadRequest("matches: the only key supported is resource_name.")
        value = item.get("value")
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest("matches: the value must be a string of at most 255 characters.")
        if found is not None:
            raise BadRequest("matches: resource_name given twice.")
        found = value
    return found


def _number(
    doc: Mapping[str, object], name: str, default: int, *, low: int, high: int | None
) -> int:
    given = doc.get(name)
    if given is None:
        return default
    # The API takes these as strings: a JSON number is refused, as on the real service.
    if not isinstance(given, str) or not given.isdigit():
        raise BadRequest(f"{name} must be a string holding a whole number.")
    number = int(given)
    if number < low or (high is not None and number > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise BadRequest(f"{name} must be {bounds} ({given} given).")
    return number


@dataclass
class Churn:
    """Test hook: after each ``filter`` page served, add images that match, so that tests see
    a listing change while it is being paged (``POST /_sim/churn``)."""

    tags: dict[str, str] = field(default_factory=dict)
    per_page: int = 0
    pages: int = 0
    added: list[str] = field(default_factory=list)

    def after_page(self, store: ImageStore, project_id: str) -> None:
        if self.pages <= 0:
            return
        self.pages -= 1
        for _ in range(self.per_page):
            image_id = str(uuid.uuid4())
            store.add_image(project_id, image_id, dict(self.tags))
            self.added.append(image_id)


CHURN_KEY = web.AppKey("query_churn", Churn)


def _resource(store: ImageStore, project_id: str, image_id: str) -> dict[str, object]:
    tags = store.tags_of(project_id, image_id) or {}
    return {
        "resource_id": image_id,
        "resource_name": store.name_of(project_id, image_id),
        "resource_detail": {"status": "active"},
        "tags": [{"key": key, "value": value} for key, value in tags.items()],
    }


async def query_images(request: web.Request) -> web.Response:
    """``POST /v2/{project}/images/resource_instances/action``: filter (a page) or count."""
    store, project = request.app[STORE_KEY], request.match_info["project_id"]
    request_id = request[REQUEST_ID_KEY]
    try:
        query = parse_query(request[BODY_KEY])
    except BadRequest as exc:
        return ims_error(400, IMG_BAD_REQUEST, str(exc), request_id)
    matched = [
        image
        for (owner, image), tags in store.images.items()
        if owner == project and query.matches(tags, store.name_of(project, image))
    ]
    body: dict[str, object] = {"total_count": len(matched)}
    if query.action == "filter":
        page = matched[query.offset : query.offset + query.limit]
        body["resources"] = [_resource(store, project, image) for image in page]
        request.app[CHURN_KEY].after_page(store, project)
    return web.json_response(body, headers={"X-Request-Id": request_id})


async def set_churn(request: web.Request) -> web.Response:
    """``POST /_sim/churn`` ``{"tags": {"env": "x"}, "per_page": 1, "pages": 2}``: for tests."""
    body = await request.json()
    churn = request.app[CHURN_KEY]
    churn.tags = {str(k): str(v) for k, v in body.get("tags", {}).items()}
    churn.per_page, churn.pages = int(body.get("per_page", 1)), int(body.get("pages", 0))
    return web.json_response({"pages": churn.pages})


async def get_churn(request: web.Request) -> web.Response:
    """``GET /_sim/churn``: the images the churn added so far."""
    churn = request.app[CHURN_KEY]
    return web.json_response({"added": churn.added, "pages": churn.pages})


def add_routes(app: web.Application) -> None:
    app[CHURN_KEY] = Churn()
    app.router.add_post(
        "/v2/{project_id}/images/resource_instances/action", query_images, name="v2_query"
    )
    app.router.add_post("/_sim/churn", set_churn)
    app.router.add_get("/_sim/churn", get_churn)
