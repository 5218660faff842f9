"""The Tag Management Service (TMS) calls tagsweep makes: one batch delete removes a set of
keys from up to 20 images of one project, by key whatever the value (the limits and key rules
are ``worker.cloud.tmsrules``); and the providers list names the resource type of IMS images.

TMS is a global service: one endpoint per cloud, not per region (``tmsrules.tms_endpoint``), signed
with the account's ``X-Domain-Id`` (``worker.cloud.auth.DomainAkSkAuth``). A 200 may still
hold ``failed_resources``; each one becomes that image's own ``Outcome``
(``outcomes.classify_failed_resource``), the others are deleted. Facts: docs/ims-api.md, TMS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import aiohttp

from worker.cloud.auth import Auth
from worker.cloud.client import SignedClient
from worker.cloud.outcomes import Outcome, OutcomeKind, classify_failed_resource
from worker.cloud.tmsrules import EXPECTED_IMAGE_TYPE, IMS_PROVIDER


def encode_batch_delete(
    project_id: str, resource_type: str, resource_ids: Sequence[str], keys: Sequence[str]
) -> bytes:
    """The batch delete's JSON body, as bytes (serialised once: signed and sent as is)."""
    document = {
        "project_id": project_id,
        "resources": [{"resource_id": rid, "resource_type": resource_type} for rid in resource_ids],
        "tags": [{"key": key} for key in keys],
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class TmsAnswer:
    """A batch delete's answer: the call's outcome, and the outcome of each resource that
    failed inside a 200 (by resource id; the others were deleted)."""

    outcome: Outcome
    failed: Mapping[str, Outcome] = field(default_factory=dict)

    def outcome_of(self, resource_id: str) -> Outcome:
        return self.failed.get(resource_id, self.outcome)


class TmsClient(SignedClient):
    """Calls TMS with one identity for one account (``domain_id``, which the auth signs)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        endpoint: str,
        auth: Auth,
        domain_id: str,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(session, endpoint=endpoint, auth=auth, timeout_s=timeout_s)
        self.domain_id = domain_id

    async def batch_delete(
        self,
        project_id: str,
        resource_type: str,
        resource_ids: Sequence[str],
        keys: Sequence[str],
    ) -> TmsAnswer:
        """``POST /v1.0/resource-tags/batch-delete``: ``keys`` off every resource."""
        body = encode_batch_delete(project_id, resource_type, resource_ids, keys)
        outcome, raw = await self._exchange(
            "POST", "/v1.0/resource-tags/batch-delete", body, project_id
        )
        if outcome.kind is not OutcomeKind.OK:
            return TmsAnswer(outcome)
        return TmsAnswer(outcome, parse_failed_resources(raw, outcome))

    async def ims_resource_type(self) -> tuple[Outcome, str | None]:
        """``GET /v1.0/tms/providers?provider=ims``: the resource type TMS names for IMS
        images (None when the answer lists none). A success that is not a providers list is
        a server error: worth another try."""
        outcome, raw = await self._exchange("GET", "/v1.0/tms/providers?provider=ims", b"", "")
        if outcome.kind is not OutcomeKind.OK:
            return outcome, None
        found = parse_image_type(raw)
        if found is None:
            message = "the response is not a providers list"
            return replace(outcome, kind=OutcomeKind.SERVER_ERROR, error_message=message), None
        return outcome, found or None


def parse_failed_resources(raw: bytes, answer: Outcome) -> dict[str, Outcome]:
    """Resource id -> its outcome, from a 200's ``failed_resources`` (absent: none failed)."""
    try:
        data = json.loads(raw) if raw else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    items = data.get("failed_resources") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        str(item.get("resource_id")): classify_failed_resource(
            _text(item.get("error_code")), _text(item.get("error_msg")), answer=answer
        )
        for item in items
        if isinstance(item, dict) and item.get("resource_id") is not None
    }


def parse_image_type(raw: bytes) -> str | None:
    """IMS's image resource type from a providers answer: "" when IMS or an image type is not
    listed, None when the body is no providers list. ``private_image`` wins if listed."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    providers = data.get("providers") if isinstance(data, dict) else None
    if not isinstance(providers, list):
        return None
    types = [
        str(item.get("resource_type"))
        for provider in providers
        if isinstance(provider, dict) and provider.get("provider") == IMS_PROVIDER
        for item in provider.get("resource_types") or ()
        if isinstance(item, dict) and item.get("resource_type")
    ]
    if EXPECTED_IMAGE_TYPE in types:
        return EXPECTED_IMAGE_TYPE
    image_types = [name for name in types if "image" in name]
    return image_types[0] if image_types else ""


def _text(value: object) -> str | None:
    return None if value is None else str(value)
