"""TMS (Tag Management Service) as the simulator serves it: providers and batch delete.

TMS is a global service: its paths start ``/v1.0/`` and live on the same port as IMS here.
It works on the same image store as the IMS routes, so a key TMS removes is gone for IMS
reads too. The facts (limits, key rules, answer shapes, codes) and the simulator's own choices
are in docs/ims-api.md, "Tag Management Service".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from aiohttp import web

from simulator.ims import BODY_KEY, REQUEST_ID_KEY
from simulator.responses import tms_error
from simulator.state import ImageStore

# Keys TMS accepts: 1 to 36 ASCII letters, digits, "-", "_" or "@" (IMS itself allows 127
# characters of anything, so some keys can only be removed through IMS).
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_@-]{1,36}$")
MAX_KEYS = 10
# TMS's published codes (its error-code page): 0002 bad request, 0005 not found, 0006
# throttled (a 403), 0009 bad key, 0012 empty tags.
TMS_BAD_REQUEST = "TMS.0002"
TMS_NOT_FOUND = "TMS.0005"
TMS_THROTTLED = "TMS.0006"
TMS_BAD_KEY = "TMS.0009"
TMS_EMPTY_TAGS = "TMS.0012"
THROTTLED_MESSAGE = "The request is Too much, try again later."
# A failed resource of a type TMS does not handle: no code is published for it, so the
# simulator answers TMS.0002 with a message that names the type.
UNSUPPORTED_TYPE_CODE = TMS_BAD_REQUEST
# Other services in the providers answer, so that a client must pick IMS out of a list.
OTHER_PROVIDERS = (
    ("ecs", "Elastic Cloud Server", "cloudservers"),
    ("evs", "Elastic Volume Service", "disk"),
)
REGIONS = ["ap-southeast-1", "cn-north-4"]


@dataclass
class TagService:
    """What the simulated TMS knows: the images, IMS's resource type, its per-call limit."""

    store: ImageStore
    resource_type: str = "private_image"
    lists_ims: bool = True
    max_resources: int = 20
    resources_deleted: int = 0


TMS_KEY = web.AppKey("tms", TagService)


class TmsBadRequest(Exception):
    """Raised when a TMS request body breaks its rules; carries TMS's code for the 400."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BatchDelete:
    """A checked batch-delete body: one project, its resources, the keys to remove."""

    project_id: str
    resources: list[tuple[str, str]]
    keys: list[str]


def parse_batch_delete(body: bytes, *, max_resources: int) -> BatchDelete:
    """The batch-delete body, checked as TMS documents it; TmsBadRequest otherwise."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TmsBadRequest(TMS_BAD_REQUEST, "The request body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise TmsBadRequest(TMS_BAD_REQUEST, "The request body must be a JSON object.")
    project_id = document.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        # Required for regional resource types, which IMS images are.
        raise TmsBadRequest(TMS_BAD_REQUEST, "project_id is required for regional resources.")
    resources = _resources(document.get("resources"), max_resources=max_resources)
    return BatchDelete(project_id, resources, _keys(document.get("tags")))


def _resources(value: object, *, max_resources: int) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not value:
        raise TmsBadRequest(TMS_BAD_REQUEST, "resources is missing or empty.")
    if len(value) > max_resources:
        raise TmsBadRequest(TMS_BAD_REQUEST, f"At most {max_resources} resources a request.")
    pairs = []
    for item in value:
        resource_id = item.get("resource_id") if isinstance(item, dict) else None
        resource_type = item.get("resource_type") if isinstance(item, dict) else None
        if not isinstance(resource_id, str) or not isinstance(resource_type, str):
            raise TmsBadRequest(TMS_BAD_REQUEST, "Each resource needs resource_id and type.")
        pairs.append((resource_id, resource_type))
    return pairs


def _keys(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise TmsBadRequest(TMS_EMPTY_TAGS, "Tags is empty.")
    if len(value) > MAX_KEYS:
        raise TmsBadRequest(TMS_BAD_REQUEST, f"At most {MAX_KEYS} tags a request.")
    keys = []
    for tag in value:
        key = tag.get("key") if isinstance(tag, dict) else None
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise TmsBadRequest(TMS_BAD_KEY, "Key is invalid.")
        keys.append(key)
    return keys


def _failure(
    service: TagService, project_id: str, resource_id: str, resource_type: str
) -> dict[str, str] | None:
    """Why one resource's keys cannot be removed, as a ``failed_resources`` item; or None."""
    if not service.lists_ims or resource_type != service.resource_type:
        code, message = (
            UNSUPPORTED_TYPE_CODE,
            f"The resource type {resource_type} is not supported.",
        )
    elif service.store.tags_of(project_id, resource_id) is None:
        code, message = TMS_NOT_FOUND, "The resources requested cannot be found."
    else:
        return None
    return {
        "resource_id": resource_id,
        "resource_type": resource_type,
        "error_code": code,
        "error_msg": message,
    }


async def batch_delete(request: web.Request) -> web.Response:
    """``POST /v1.0/resource-tags/batch-delete``: 200 ``{"failed_resources": [...]}``."""
    service = request.app[TMS_KEY]
    request_id = request[REQUEST_ID_KEY]
    try:
        call = parse_batch_delete(request[BODY_KEY], max_resources=service.max_resources)
    except TmsBadRequest as exc:
        return tms_error(400, exc.code, str(exc), request_id)
    failed = []
    for resource_id, resource_type in call.resources:
        failure = _failure(service, call.project_id, resource_id, resource_type)
        if failure is None:
            # By key only: TMS's tag object carries no value to compare.
            service.store.delete(call.project_id, resource_id, call.keys)
            service.resources_deleted += 1
        else:
            failed.append(failure)
    return web.json_response({"failed_resources": failed}, headers={"X-Request-Id": request_id})


async def list_providers(request: web.Request) -> web.Response:
    """``GET /v1.0/tms/providers[?provider=ims]``: the services TMS tags, with their types."""
    service = request.app[TMS_KEY]
    catalog = [(name, display, rtype) for name, display, rtype in OTHER_PROVIDERS]
    if service.lists_ims:
        catalog.append(("ims", "Image Management Service", service.resource_type))
    wanted = request.query.get("provider")
    providers = [
        {
            "provider": name,
            "provider_i18n_display_name": display,
            "resource_types": [
                {
                    "resource_type": rtype,
                    "resource_type_i18n_display_name": rtype,
                    "regions": REGIONS,
                    "global": False,
                }
            ],
        }
        for name, display, rtype in sorted(catalog)
        if wanted is None or name == wanted
    ]
    body = {"providers": providers, "total_count": len(providers)}
    return web.json_response(body, headers={"X-Request-Id": request[REQUEST_ID_KEY]})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/resource-tags/batch-delete", batch_delete, name="tms_batch_delete")
    app.router.add_get("/v1.0/tms/providers", list_providers, name="tms_providers")
