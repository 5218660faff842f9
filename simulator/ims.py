"""IMS's tag APIs as the simulator serves them (behind the gateway checks in ``app``)."""

from __future__ import annotations

import json

from aiohttp import web

from simulator.responses import IMG_BAD_REQUEST, IMG_NOT_FOUND, ims_error
from simulator.state import ImageStore

MAX_KEY_LEN = 127
# Huawei Cloud reserves this key prefix for system tags; users cannot change them.
SYSTEM_PREFIX = "_sys_"
MAX_VALUE_LEN = 255
STORE_KEY = web.AppKey("store", ImageStore)
MAX_TAGS_KEY = web.AppKey("max_tags_per_image", int)
# Set by the gateway middleware before a handler runs.
BODY_KEY = web.RequestKey("body", bytes)
REQUEST_ID_KEY = web.RequestKey("request_id", str)


class BadRequest(Exception):
    """Raised when a request body breaks the API's rules; the message goes to the client."""


def parse_tags(body: bytes, *, field: str = "tags") -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a tag body, checked as IMS checks them (lengths only)."""
    tags = _document(body).get(field)
    if not isinstance(tags, list) or not tags:
        raise BadRequest(f"The parameter {field} is missing or empty.")
    return [check_tag(tag) for tag in tags]


def check_tag(tag: object) -> tuple[str, str]:
    """One ``{"key", "value"}`` object as a pair; a missing value is the empty string."""
    if not isinstance(tag, dict):
        raise BadRequest("Each tag must be an object.")
    key, value = tag.get("key"), tag.get("value", "")
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
        raise BadRequest(f"The tag key must be 1 to {MAX_KEY_LEN} characters.")
    if not isinstance(value, str) or len(value) > MAX_VALUE_LEN:
        raise BadRequest(f"The tag value must be at most {MAX_VALUE_LEN} characters.")
    if key.startswith(SYSTEM_PREFIX):
        raise BadRequest(f"Tags whose key starts with {SYSTEM_PREFIX} are system tags.")
    return key, value


def _document(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object.")
    return document


# The query API (simulator/query.py) reads its bodies the same way.
document = _document


def _image(request: web.Request) -> tuple[ImageStore, str, str, dict[str, str] | None]:
    store = request.app[STORE_KEY]
    project, image = request.match_info["project_id"], request.match_info["image_id"]
    return store, project, image, store.tags_of(project, image)


def _not_found(request: web.Request) -> web.Response:
    return ims_error(404, IMG_NOT_FOUND, "The image does not exist.", request[REQUEST_ID_KEY])


def _bad(request: web.Request, exc: BadRequest) -> web.Response:
    return ims_error(400, IMG_BAD_REQUEST, str(exc), request[REQUEST_ID_KEY])


def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"X-Request-Id": request[REQUEST_ID_KEY]})


async def batch_delete_v1(request: web.Request) -> web.Response:
    """``DELETE /v1/{project}/cloudimages/{image}/tags/delete``: idempotent."""
    store, project, image, tags = _image(request)
    if tags is None:
        return _not_found(request)
    try:
        pairs = parse_tags(request[BODY_KEY])
    except BadRequest as exc:
        return _bad(request, exc)
    store.delete(project, image, [key for key, _ in pairs])
    return _no_content(request)


async def tags_action_v2(request: web.Request) -> web.Response:
    """``POST /v2/{project}/images/{image}/tags/action``: create or delete, idempotent."""
    store, project, image, tags = _image(request)
    if tags is None:
        return _not_found(request)
    try:
        action = _document(request[BODY_KEY]).get("action")
        pairs = parse_tags(request[BODY_KEY])
        if action not in ("create", "delete"):  # case-sensitive, as the real API
            raise BadRequest("The action must be create or delete.")
        if len({key for key, _ in pairs}) != len(pairs):
            raise BadRequest("Tag keys must be unique within one request.")
        if action == "create":
            _check_room(request, tags, pairs)
    except BadRequest as exc:
        return _bad(request, exc)
    if action == "create":
        tags.update(pairs)
    else:
        store.delete(project, image, [key for key, _ in pairs])
    return _no_content(request)


def _check_room(request: web.Request, tags: dict[str, str], pairs: list[tuple[str, str]]) -> None:
    limit = request.app[MAX_TAGS_KEY]
    if limit and len(set(tags) | {key for key, _ in pairs}) > limit:
        raise BadRequest(f"An image can have at most {limit} tags.")


async def list_tags_v2(request: web.Request) -> web.Response:
    """``GET /v2/{project}/images/{image}/tags``."""
    _, _, _, tags = _image(request)
    if tags is None:
        return _not_found(request)
    body = {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
    return web.json_response(body, headers={"X-Request-Id": request[REQUEST_ID_KEY]})


async def add_tag_v2(request: web.Request) -> web.Response:
    """``POST /v2/{project}/images/{image}/tags``: one tag, overwriting the key's value."""
    _, _, _, tags = _image(request)
    if tags is None:
        return _not_found(request)
    try:
        key, value = check_tag(_document(request[BODY_KEY]).get("tag"))
        _check_room(request, tags, [(key, value)])
    except BadRequest as exc:
        return _bad(request, exc)
    tags[key] = value
    return _no_content(request)


async def delete_tag_v2(request: web.Request) -> web.Response:
    """``DELETE /v2/{project}/images/{image}/tags/{key}``: NOT idempotent, 404 when absent."""
    store, project, image, tags = _image(request)
    key = request.match_info["key"]
    if tags is None or key not in tags:
        return _not_found(request)
    store.delete(project, image, [key])
    return _no_content(request)


def add_routes(app: web.Application) -> None:
    base = "/v2/{project_id}/images/{image_id}/tags"
    app.router.add_delete(
        "/v1/{project_id}/cloudimages/{image_id}/tags/delete", batch_delete_v1, name="v1_delete"
    )
    app.router.add_post(base + "/action", tags_action_v2, name="v2_action")
    app.router.add_get(base, list_tags_v2, name="v2_list")
    app.router.add_post(base, add_tag_v2, name="v2_add")
    app.router.add_delete(base + "/{key}", delete_tag_v2, name="v2_delete_one")
