"""The IMS calls tagsweep makes, over one long-lived ``aiohttp.ClientSession``.

Each call serialises its JSON body once; those bytes are signed and sent. Every call returns an
``Outcome`` and never raises for HTTP or transport failures: deciding to retry is the caller's
job. The one retry made here is after an expired token, once, with a renewed one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal
from urllib.parse import quote

import aiohttp
from yarl import URL

from worker.cloud.auth import Auth
from worker.cloud.outcomes import (
    TRANSPORT_ERRORS,
    Outcome,
    OutcomeKind,
    classify_exception,
    classify_response,
)
from worker.cloud.query import QueryPage, parse_page
from worker.model import Tag

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
DEFAULT_ENDPOINT = "https://ims.{region}.myhuaweicloud.com"


def ims_endpoint(region: str, override: str | None = None) -> str:
    """The IMS base URL: an explicit endpoint (a simulator, another cloud) or the region's."""
    return (override or DEFAULT_ENDPOINT.format(region=region)).rstrip("/")


def encode_tags(tags: Sequence[Tag], **extra: str) -> bytes:
    """The JSON body for the tag APIs, as bytes (serialised once: signed and sent as is)."""
    document: dict[str, object] = dict(extra)
    document["tags"] = [tag.as_json() for tag in tags]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


class SignedClient:
    """Calls one endpoint with one identity: each call signed (or given its token), sent
    once, and its answer classified; the service's calls are a subclass's."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        auth: Auth,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._endpoint = endpoint.rstrip("/")
        self._auth = auth
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @property
    def identity(self) -> str:
        return self._auth.identity

    async def _call(self, method: str, path: str, body: bytes, project_id: str) -> Outcome:
        return (await self._exchange(method, path, body, project_id))[0]

    async def _exchange(
        self, method: str, path: str, body: bytes, project_id: str
    ) -> tuple[Outcome, bytes]:
        """One call (renewing an expired token once): its outcome and the answer's bytes."""
        url = URL(self._endpoint + path, encoded=True)
        base_headers = {"Content-Type": JSON_CONTENT_TYPE} if body else {}
        answer: tuple[Outcome, bytes] = (Outcome(OutcomeKind.UNAUTHORIZED), b"")
        for _ in range(2):
            headers = await self._auth.headers_for(
                method=method, url=url, headers=base_headers, body=body, project_id=project_id
            )
            answer = await self._send(method, url, headers, body)
            if answer[0].kind is not OutcomeKind.TOKEN_EXPIRED:
                break
            if not await self._auth.renew(project_id, rejected=headers):
                break
        return answer

    async def _send(
        self, method: str, url: URL, headers: dict[str, str], body: bytes
    ) -> tuple[Outcome, bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with self._session.request(
                method, url, data=body or None, headers=headers, timeout=self._timeout
            ) as response:
                raw = await response.read()
        except TRANSPORT_ERRORS as exc:
            return classify_exception(exc, latency_ms=(loop.time() - started) * 1000), b""
        latency_ms = (loop.time() - started) * 1000
        outcome = classify_response(response.status, response.headers, raw, latency_ms=latency_ms)
        return outcome, raw


class ImsClient(SignedClient):
    """Calls one IMS endpoint with one identity."""

    async def batch_delete_tags(
        self, project_id: str, image_id: str, tags: Sequence[Tag]
    ) -> Outcome:
        """v1 batch delete (the seed API): ``DELETE .../cloudimages/{image}/tags/delete``."""
        path = path_of("v1", project_id, "cloudimages", image_id, "tags", "delete")
        return await self._call("DELETE", path, encode_tags(tags), project_id)

    async def tags_action(
        self,
        project_id: str,
        image_id: str,
        tags: Sequence[Tag],
        *,
        action: Literal["create", "delete"],
    ) -> Outcome:
        """v2 ``POST .../images/{image}/tags/action`` with ``create`` or ``delete``."""
        path = path_of("v2", project_id, "images", image_id, "tags", "action")
        return await self._call("POST", path, encode_tags(tags, action=action), project_id)

    async def list_image_tags(self, project_id: str, image_id: str) -> Outcome:
        """v2 ``GET .../images/{image}/tags``; the outcome carries the tags. A success whose
        body holds no tag list (a proxy's page, say) is a server error: worth another try."""
        path = path_of("v2", project_id, "images", image_id, "tags")
        outcome = await self._call("GET", path, b"", project_id)
        if outcome.kind is OutcomeKind.OK and outcome.tags is None:
            return replace(
                outcome,
                kind=OutcomeKind.SERVER_ERROR,
                error_message="the response holds no tag list",
            )
        return outcome

    async def query_images(self, project_id: str, body: bytes) -> tuple[Outcome, QueryPage | None]:
        """v2 ``POST .../images/resource_instances/action`` (``filter`` or ``count``, the body
        from ``ImageQuery.body``); the page is None unless the call succeeded. A success whose
        body is not such an answer is a server error: worth another try."""
        path = path_of("v2", project_id, "images", "resource_instances", "action")
        outcome, raw = await self._exchange("POST", path, body, project_id)
        if outcome.kind is not OutcomeKind.OK:
            return outcome, None
        page = parse_page(raw)
        if page is None:
            message = "the response is not a query answer"
            return replace(outcome, kind=OutcomeKind.SERVER_ERROR, error_message=message), None
        return outcome, page


def path_of(*segments: str) -> str:
    """A URL path from raw segments, each quoted whole."""
    return "".join("/" + quote(segment, safe="") for segment in segments)
