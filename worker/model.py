"""Domain records shared by the producer and the workers: tags, batches and row states."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class RowStatus(StrEnum):
    """The one final status every input row ends in (DESIGN: Results)."""

    DELETED = "deleted"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    FORBIDDEN = "forbidden"
    UNAUTHORIZED = "unauthorized"
    FAILED = "failed"
    INVALID = "invalid"
    CANCELLED = "cancelled"
    VALUE_DIFFERS = "value_differs"
    # A plan (read-only) answers each row with what a run would do.
    WOULD_DELETE = "would_delete"
    ABSENT = "absent"
    IMAGE_NOT_FOUND = "image_not_found"
    # An undo answers each tag it was asked to put back.
    RESTORED = "restored"
    KEPT_NEWER = "kept_newer"


@dataclass(frozen=True, slots=True)
class Tag:
    """One image tag; the value may be empty."""

    key: str
    value: str = ""

    def as_json(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class TagRows:
    """One tag to delete and the input rows (refs) that asked for it."""

    key: str
    value: str
    refs: tuple[int, ...]

    @property
    def tag(self) -> Tag:
        return Tag(self.key, self.value)


@dataclass(frozen=True, slots=True)
class ImageBatch:
    """Tags of one image in one (region, project): one API request once split to the cap."""

    region: str
    project_id: str
    image_id: str
    tags: tuple[TagRows, ...]
    # For a batch of a retry chunk: the chunk its rows came from, where their results go.
    origin: int | None = None

    @property
    def rows(self) -> int:
        """Input rows this batch answers for (duplicates included)."""
        return sum(len(tag.refs) for tag in self.tags)


@dataclass(frozen=True, slots=True)
class ResourceBatch:
    """Images of one (region, project) that lose the same keys: one TMS call. Each image's
    tags are ``keys``, in that order, with its own values and rows."""

    region: str
    project_id: str
    keys: tuple[str, ...]
    images: tuple[ImageBatch, ...]

    @property
    def rows(self) -> int:
        return sum(image.rows for image in self.images)


# What a chunk holds: per-image requests (IMS) and per-key-set requests (TMS).
Batch = ImageBatch | ResourceBatch


def image_batches(batches: Iterable[Batch]) -> Iterator[ImageBatch]:
    """Every image's part of the batches, a TMS batch giving one per image (for the readers
    of a job's rows: report, retry, undo)."""
    for batch in batches:
        if isinstance(batch, ResourceBatch):
            yield from batch.images
        else:
            yield batch


@dataclass(frozen=True, slots=True)
class CloudLimit:
    """The limit the gateway named in a 429 (``limit:200,time:5 minute``): ``count`` calls
    per ``window_s`` seconds."""

    count: int
    window_s: float

    @property
    def rate_per_s(self) -> float:
        return self.count / self.window_s

    def __str__(self) -> str:
        """``200 calls per 5 min``, ``40 calls per 1 s``."""
        if self.window_s >= 60 and self.window_s % 60 == 0:
            return f"{self.count} calls per {self.window_s / 60:g} min"
        return f"{self.count} calls per {self.window_s:g} s"


class Scope(StrEnum):
    """Whose allowance a 429 says ran out (``policy user over ratelimit,...``): one schedule of
    the shared limiter per scope (worker/limits/scopes.py)."""

    USER = "user"  # the credentials' user: every worker with them shares it
    IP = "ip"  # the source address: the workers that leave through it share it
    API = "api"  # the API itself: everyone shares it
