"""SDK-HMAC-SHA256 request signing, byte for byte what Huawei's SDK ``Signer`` produces.

The algorithm (huaweicloudsdkcore/signer/signer.py) differs from AWS SigV4 in ways that
matter: no derived-key chain (the SK signs the string directly), the canonical URI always ends
in ``/`` although the request is sent without it, and every header present at signing time
whose name has no ``_`` is signed. Tests compare this module with the official SDK on
hundreds of random requests.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CONTENT_HASH_HEADER = "X-Sdk-Content-Sha256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


# Characters ``quote(..., safe="~")`` leaves as they are; a text made of them only (and ``/``
# between a path's segments) is its own quoting. Most paths and query parts are: checking
# that is a few times cheaper than quoting them segment by segment, on every request.
_UNQUOTED_PATH = re.compile(r"[A-Za-z0-9_.~/-]*")
_UNQUOTED_PART = re.compile(r"[A-Za-z0-9_.~-]*")


def format_sdk_date(now: datetime) -> str:
    """Format a time the way ``X-Sdk-Date`` carries it (UTC, basic ISO 8601)."""
    return _date_text(math.floor(now.timestamp()))


@functools.lru_cache(maxsize=4)
def _date_text(second: int) -> str:
    """The header's text for a Unix second (formatted once per second, not per request)."""
    return datetime.fromtimestamp(second, UTC).strftime(DATE_FORMAT)


def canonical_uri(path: str) -> str:
    """Unquote the path, quote each segment (only ``~`` kept), and end it with ``/``."""
    raw = unquote(path)
    if _UNQUOTED_PATH.fullmatch(raw):
        uri = raw
    else:
        uri = "/".join(quote(segment, safe="~") for segment in raw.split("/"))
    return uri if uri.endswith("/") else uri + "/"


def _quote_part(text: str) -> str:
    return text if _UNQUOTED_PART.fullmatch(text) else quote(text, safe="~")


def canonical_query(query: Sequence[tuple[str, str]]) -> str:
    """Sort the raw ``(key, value)`` pairs, then quote each part (only ``~`` kept)."""
    return "&".join(f"{_quote_part(key)}={_quote_part(value)}" for key, value in sorted(query))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header name without ``_``, lower-cased and sorted."""
    return sorted(name.lower() for name in headers if "_" not in name)


def payload_hash(headers: Mapping[str, str], body: bytes) -> str:
    """Hex SHA-256 of the body, or the content-hash header's value when one is set."""
    if not body:
        return EMPTY_BODY_SHA256
    for name, value in headers.items():
        if name.lower() == CONTENT_HASH_HEADER.lower():
            return value
    return hashlib.sha256(body).hexdigest()


def string_to_sign(
    *,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, list[str]]:
    """Build the string to sign and the signed header names from a complete header set."""
    names = signed_header_names(headers)
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    canonical_request = "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            canonical_headers,
            ";".join(names),
            payload_hash(headers, body),
        ]
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM}\n{lowered[DATE_HEADER.lower()]}\n{digest}", names


def compute_signature(sk: str, text: str) -> str:
    """HMAC-SHA256 of the string to sign, keyed by the SK itself, in hex."""
    return hmac.new(sk.encode(), text.encode(), hashlib.sha256).hexdigest()


def sign_request(
    *,
    ak: str,
    sk: str,
    method: str,
    host: str,
    path: str,
    query: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> dict[str, str]:
    """Return the headers to send: the given ones, plus date, host and ``Authorization``."""
    out = dict(headers)
    lowered = {name.lower() for name in out}
    content_type = next((v for k, v in out.items() if k.lower() == "content-type"), None)
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        # The SDK leaves non-JSON payloads unhashed and says so in a signed header.
        out[CONTENT_HASH_HEADER] = UNSIGNED_PAYLOAD
    if DATE_HEADER.lower() not in lowered:
        out[DATE_HEADER] = format_sdk_date(now)
    if "host" not in lowered:
        out["Host"] = host
    text, names = string_to_sign(method=method, path=path, query=query, headers=out, body=body)
    signature = compute_signature(sk, text)
    out["Authorization"] = (
        f"{ALGORITHM} Access={ak}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def parse_authorization(value: str) -> tuple[str, list[str], str] | None:
    """Split an ``Authorization`` header into (AK, signed header names, signature)."""
    prefix = ALGORITHM + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        name, sep, field_value = part.strip().partition("=")
        if sep:
            fields[name] = field_value
    try:
        return fields["Access"], fields["SignedHeaders"].split(";"), fields["Signature"]
    except KeyError:
        return None
