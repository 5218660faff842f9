"""The rules an input row must meet, as DESIGN.md's "CSV input" states them."""

from __future__ import annotations

import re

MAX_KEY_LEN = 127
MAX_VALUE_LEN = 255

# IMS image ids are UUIDs in the 8-4-4-4-12 form; other spellings uuid.UUID accepts
# (braces, urn:, no hyphens) are refused so that one image has one spelling.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def normalise_image_id(image_id: str) -> str:
    """Trim and lower-case an image id (IMS ids are lower-case)."""
    return image_id.strip().lower()


def is_image_id(image_id: str) -> bool:
    """Whether a normalised image id is a UUID."""
    return _UUID.match(image_id) is not None


def is_utf8(*fields: str) -> bool:
    """False when a field holds bytes that were not UTF-8 (kept as surrogate escapes)."""
    try:
        for field in fields:
            field.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def tag_problem(key: str, value: str) -> str | None:
    """Why a key/value pair cannot be sent, or ``None`` when it can."""
    if not key:
        return "the key is empty"
    if len(key) > MAX_KEY_LEN:
        return f"the key is {len(key)} characters long; at most {MAX_KEY_LEN} are allowed"
    if len(value) > MAX_VALUE_LEN:
        return f"the value is {len(value)} characters long; at most {MAX_VALUE_LEN} are allowed"
    if not (key.isascii() and value.isascii()) and not is_utf8(key, value):
        return "the row is not valid UTF-8"
    return None


def image_problem(raw: str, normalised: str) -> str | None:
    """Why an image id is unusable, or ``None``."""
    if not normalised:
        return "image_id is empty"
    if not is_image_id(normalised):
        shown = raw if is_utf8(raw) else raw.encode("utf-8", "replace").decode()
        return f"image_id {shown[:80]!r} is not a UUID"
    return None
