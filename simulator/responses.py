"""Error bodies in the two shapes the real services use, and request ids."""

from __future__ import annotations

import uuid

from aiohttp import web

# Codes the simulator uses for IMS's own errors. IMS publishes the IMG.xxxx format but no
# code for these cases on the tag pages, so these are the simulator's choice.
IMG_BAD_REQUEST = "IMG.0001"
IMG_NOT_FOUND = "IMG.0027"
IMG_INTERNAL = "IMG.0999"


def new_request_id() -> str:
    return uuid.uuid4().hex


def ims_error(status: int, code: str, message: str, request_id: str) -> web.Response:
    """IMS's own shape: ``{"error": {"code": ..., "message": ...}}``."""
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"X-Request-Id": request_id},
    )


def gateway_error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The API gateway's shape: ``{"error_msg", "error_code", "request_id"}``."""
    return web.json_response(
        {"error_msg": message, "error_code": code, "request_id": request_id},
        status=status,
        headers={"X-Request-Id": request_id, **(headers or {})},
    )


def tms_error(status: int, code: str, message: str, request_id: str) -> web.Response:
    """TMS's own shape: ``{"error_code": "TMS.xxxx", "error_msg": ...}``."""
    return web.json_response(
        {"error_code": code, "error_msg": message},
        status=status,
        headers={"X-Request-Id": request_id},
    )


def iam_error(status: int, message: str) -> web.Response:
    """IAM's shape: ``{"error": {"code": 401, "message": ..., "title": ...}}``."""
    title = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}.get(status, "Error")
    return web.json_response(
        {"error": {"code": status, "message": message, "title": title}}, status=status
    )


# Gateway codes and messages per injected status, as the real gateway words them.
INJECTED = {
    400: ("APIGW.0201", "Request body is invalid."),
    401: ("APIGW.0301", "Incorrect IAM authentication information: unauthorized."),
    403: ("APIGW.0302", "The IAM user is forbidden in the currently selected region."),
    404: ("APIGW.0101", "The API does not exist or has not been published in the environment."),
    429: ("APIGW.0308", "The throttling threshold has been reached."),
    500: ("APIGW.0601", "Internal server error."),
    502: ("APIGW.0202", "The backend service is unavailable."),
    503: ("APIGW.0613", "IAM service is unavailable."),
    504: ("APIGW.0204", "Backend timeout."),
}
