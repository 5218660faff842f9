"""What one IMS call came to: every HTTP response or transport failure becomes one ``Outcome``.

This is the one place that maps responses to meaning (STYLE: errors). Two body shapes exist:
IMS's own ``{"error": {"code": "IMG.xxxx", "message": ...}}`` and the API gateway's
``{"error_code": "APIGW.0308", "error_msg": ..., "request_id": ...}``, whose prefix is
``APIG.`` on some services; TMS nests it in ``"error"``. TMS throttles with the gateway's 429
and with its own **403** ``TMS.0006``: both are ``THROTTLED``, so both reach the shared limiter.

A throttled call's gateway message may name the limit applied, whose window need not be a
second: ``The throttling threshold has been reached: policy user over ratelimit,limit:200,
time:5 minute`` (a real answer quoted in terraform-provider-huaweicloud issue #1335; Huawei's
error-code page gives ``time:1 minute`` examples). ``Outcome.limit`` carries it, and
``Outcome.scope`` the policy's scope: ``user``, ``ip`` (per source address) or ``api``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import aiohttp

from worker.model import CloudLimit, RowStatus, Scope, Tag


class OutcomeKind(StrEnum):
    """The class of a call's result; decides between record, retry and abort."""

    OK = "ok"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    SIGNATURE_FAILED = "signature_failed"
    TOKEN_EXPIRED = "token_expired"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    # TMS refused a resource's type or key inside a 200: IMS may do it (``--api auto``).
    UNSUPPORTED = "unsupported"

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed later (DESIGN: retry 429, 5xx, timeouts, network)."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        OutcomeKind.THROTTLED,
        OutcomeKind.SERVER_ERROR,
        OutcomeKind.NETWORK_ERROR,
        OutcomeKind.TIMEOUT,
    }
)

# Final row status for each kind once no more attempts will be made.
ROW_STATUS = {
    OutcomeKind.OK: RowStatus.DELETED,
    OutcomeKind.NOT_FOUND: RowStatus.NOT_FOUND,
    OutcomeKind.REJECTED: RowStatus.REJECTED,
    OutcomeKind.FORBIDDEN: RowStatus.FORBIDDEN,
    OutcomeKind.UNAUTHORIZED: RowStatus.UNAUTHORIZED,
    OutcomeKind.SIGNATURE_FAILED: RowStatus.UNAUTHORIZED,
    OutcomeKind.TOKEN_EXPIRED: RowStatus.UNAUTHORIZED,
    OutcomeKind.THROTTLED: RowStatus.FAILED,
    OutcomeKind.SERVER_ERROR: RowStatus.FAILED,
    OutcomeKind.NETWORK_ERROR: RowStatus.FAILED,
    OutcomeKind.TIMEOUT: RowStatus.FAILED,
    OutcomeKind.UNSUPPORTED: RowStatus.REJECTED,
}

# Gateway codes (APIGW.xxxx, or APIG.xxxx on some services) that decide the class on a 401.
_TOKEN_RENEW_CODE = "0307"
_BAD_CREDENTIALS_CODE = "0301"
_THROTTLED_CODE = "0308"
# TMS's own throttling answer, a 403 (docs/ims-api.md, TMS).
TMS_THROTTLED_CODE = "TMS.0006"
# "limit:200,time:5 minute"; units seen or plausible in the gateway's policy text.
_LIMIT_TEXT = re.compile(
    r"limit\s*:\s*(\d+)\s*,\s*time\s*:\s*(\d+(?:\.\d+)?)\s*(second|minute|hour|day)s?",
    re.IGNORECASE,
)
# "policy ip over ratelimit": whose allowance ran out.
_SCOPE_TEXT = re.compile(r"\bpolicy\s+(user|ip|api)\b", re.IGNORECASE)
_UNIT_S = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
# The gateway's 401 messages that refuse the AK/SK itself, so that every call would fail the
# same way: a bad signature ("verify aksk signature fail"), an AK locked after five of them
# ("AK access failed to reach the limit,forbidden"), an AK it does not know ("Get secretKey
# failed,ak:...,err:ak not exist", Huawei's "Common Errors Related to IAM Authentication
# Information"). Repeating them makes it worse (docs/ims-api.md).
_AKSK_REFUSED = ("signature", "reach the limit", "secretkey", "ak not exist")
# That last message names the AK: no AK reaches a log, a Redis value or a report (the workers'
# log redactor masks it too), so it is masked here, where every answer passes.
_AK_NAMED = re.compile(r"(\bak:)[^,\s]+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One call's result: its class and everything worth recording about it."""

    kind: OutcomeKind
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    retry_after_s: float | None = None
    latency_ms: float = 0.0
    tags: tuple[Tag, ...] | None = None
    # On a 429 whose gateway message names it: the limit the cloud applied.
    limit: CloudLimit | None = None
    # ... and the scope of the policy that refused it.
    scope: Scope | None = None

    @property
    def row_status(self) -> RowStatus:
        return ROW_STATUS[self.kind]


def classify_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    latency_ms: float,
    now: datetime | None = None,
) -> Outcome:
    """Turn one HTTP response into an ``Outcome``."""
    code, message, body_request_id = parse_error_body(body) if status >= 400 else (None, None, None)
    throttling = status == 429 and _is_throttling(code)
    return Outcome(
        kind=_kind_for(status, code, message),
        http_status=status,
        error_code=code,
        error_message=message,
        request_id=headers.get("X-Request-Id") or body_request_id,
        retry_after_s=parse_retry_after(headers.get("Retry-After"), now=now),
        latency_ms=latency_ms,
        tags=_parse_tags(body) if 200 <= status < 300 and body else None,
        limit=parse_cloud_limit(message) if throttling else None,
        scope=parse_scope(message) if throttling else None,
    )


def classify_failed_resource(code: str | None, message: str | None, *, answer: Outcome) -> Outcome:
    """One of TMS's ``failed_resources`` (inside the 200 ``answer``) as that resource's own
    ``Outcome``: its code, else its words, decide; the rest is rejected (docs/ims-api.md)."""
    words = f"{code or ''} {message or ''}".lower()
    kind = next((k for k, said in _FAILED if any(w in words for w in said)), OutcomeKind.REJECTED)
    return replace(answer, kind=kind, error_code=code, error_message=message, tags=None)


# In order: TMS's codes (0006 throttled, 0005 not found), then the words of its messages.
_FAILED = (
    (OutcomeKind.THROTTLED, ("tms.0006",)),
    (OutcomeKind.NOT_FOUND, ("tms.0005", "not exist", "not found", "be found", "no such")),
    (OutcomeKind.UNSUPPORTED, ("not support", "unsupported", "resource type", "tag key")),
)


def classify_exception(exc: BaseException, *, latency_ms: float) -> Outcome:
    """Turn a transport failure (timeout, refused or dropped connection) into an ``Outcome``."""
    kind = (
        OutcomeKind.TIMEOUT if isinstance(exc, asyncio.TimeoutError) else OutcomeKind.NETWORK_ERROR
    )
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Outcome(kind=kind, error_message=message, latency_ms=latency_ms)


TRANSPORT_ERRORS = (asyncio.TimeoutError, aiohttp.ClientError, OSError)


def _kind_for(status: int, code: str | None, message: str | None) -> OutcomeKind:
    if 200 <= status < 300:
        return OutcomeKind.OK
    if status == 401:
        return _unauthorized_kind(code, message or "")
    if status == 403 and code == TMS_THROTTLED_CODE:
        return OutcomeKind.THROTTLED
    fixed = {
        400: OutcomeKind.REJECTED,
        403: OutcomeKind.FORBIDDEN,
        404: OutcomeKind.NOT_FOUND,
        429: OutcomeKind.THROTTLED,
    }
    if status in fixed:
        return fixed[status]
    if status >= 500:
        return OutcomeKind.SERVER_ERROR
    # Other 4xx (405, 409, 413, ...) will not get better by repeating the same request.
    return OutcomeKind.REJECTED


def _unauthorized_kind(code: str | None, message: str) -> OutcomeKind:
    suffix = gateway_code_suffix(code)
    lowered = message.lower()
    if suffix == _TOKEN_RENEW_CODE or (
        suffix == _BAD_CREDENTIALS_CODE and "token expire" in lowered
    ):
        return OutcomeKind.TOKEN_EXPIRED
    if any(sign in lowered for sign in _AKSK_REFUSED):
        return OutcomeKind.SIGNATURE_FAILED
    return OutcomeKind.UNAUTHORIZED


def _is_throttling(code: str | None) -> bool:
    return gateway_code_suffix(code) == _THROTTLED_CODE


def parse_cloud_limit(message: str | None) -> CloudLimit | None:
    """The limit named in a throttling message (``limit:200,time:5 minute``), if any."""
    match = _LIMIT_TEXT.search(message or "")
    if match is None:
        return None
    count, window_s = int(match[1]), float(match[2]) * _UNIT_S[match[3].lower()]
    return CloudLimit(count, window_s) if count > 0 and window_s > 0 else None


def parse_scope(message: str | None) -> Scope | None:
    """The scope of the policy named in a throttling message (``policy ip over ...``), if any."""
    match = _SCOPE_TEXT.search(message or "")
    return None if match is None else Scope(match[1].lower())


def gateway_code_suffix(code: str | None) -> str | None:
    """``APIGW.0308`` and ``APIG.0308`` both give ``0308``; other codes give ``None``."""
    if code is None:
        return None
    prefix, sep, suffix = code.partition(".")
    return suffix if sep and prefix in {"APIGW", "APIG"} else None


def parse_error_body(body: bytes) -> tuple[str | None, str | None, str | None]:
    """Return (error code, message, request id) from either error body shape."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:200].decode("utf-8", "replace").strip()
        return None, text or None, None
    if not isinstance(data, dict):
        return None, None, None
    nested = data.get("error")
    if isinstance(nested, dict):
        code = nested.get("code", nested.get("error_code"))
        said = _str_or_none(nested.get("message", nested.get("error_msg")))
        masked = _AK_NAMED.sub(r"\1***", said) if said else None
        return _str_or_none(code), masked, _str_or_none(nested.get("request_id"))
    message = _str_or_none(data.get("error_msg"))
    return (
        _str_or_none(data.get("error_code")),
        _AK_NAMED.sub(r"\1***", message) if message else None,
        _str_or_none(data.get("request_id")),
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _parse_tags(body: bytes) -> tuple[Tag, ...] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    tags = data.get("tags") if isinstance(data, dict) else None
    if not isinstance(tags, list):
        return None
    return tuple(
        Tag(_text(item.get("key")), _text(item.get("value")))
        for item in tags
        if isinstance(item, dict)
    )


def _text(value: object) -> str:
    """A tag field as text; a missing or null value is the empty string."""
    return "" if value is None else str(value)


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
