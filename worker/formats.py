"""How chunks, results and observations are stored in Redis: the one place that writes and
parses them (``worker.keys`` says which key holds which)."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Sequence

from worker.errors import MalformedChunk
from worker.jobs import RowResult
from worker.model import Batch, ImageBatch, ResourceBatch, TagRows

# A chunk is a JSON list of batches: [region, project, image, [[key, value, [ref, ...]], ...]]
# and, for a batch of a retry chunk, the number of the chunk its rows came from. A TMS batch
# names its keys once: [region, project, [key, ...], [[image, [[value, [ref, ...]], ...]
# (one per key, in order), origin?], ...]]; its third field, a list, tells it apart. Stored
# zlib-compressed in base64 text (CHUNK_MARK first), so that clients decoding responses as text
# read it too; a chunk that starts with "[" is plain JSON (written by earlier versions).
CHUNK_MARK = "z"


def encode_chunk(batches: Sequence[Batch]) -> str:
    data = json.dumps(
        [_batch_json(b) for b in batches], ensure_ascii=False, separators=(",", ":")
    ).encode()
    return CHUNK_MARK + base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def _batch_json(b: Batch) -> list[object]:
    if isinstance(b, ResourceBatch):
        return [b.region, b.project_id, list(b.keys), [_member_json(i) for i in b.images]]
    tags = [[t.key, t.value, list(t.refs)] for t in b.tags]
    if b.origin is None:
        return [b.region, b.project_id, b.image_id, tags]
    return [b.region, b.project_id, b.image_id, tags, b.origin]


def _member_json(image: ImageBatch) -> list[object]:
    values = [[t.value, list(t.refs)] for t in image.tags]
    return (
        [image.image_id, values] if image.origin is None else [image.image_id, values, image.origin]
    )


def decode_chunk(text: str | bytes) -> list[Batch]:
    """Parse a chunk, checking its shape: a chunk is data from Redis, not trusted code."""
    try:
        if isinstance(text, bytes):
            text = text.decode()
        if text.startswith(CHUNK_MARK):
            text = zlib.decompress(base64.b64decode(text[1:], validate=True)).decode()
        return [
            _group(*entry) if isinstance(entry[2], list) else _batch(*entry)
            for entry in json.loads(text)
        ]
    except (ValueError, TypeError, IndexError, zlib.error) as exc:
        raise MalformedChunk(str(exc)) from None


def _group(
    region: object, project: object, keys: list[object], members: list[list[object]]
) -> ResourceBatch:
    names = tuple(_text(key) for key in keys)
    images = []
    for image, values, *origin in members:
        if len(origin) > 1 or not isinstance(values, list) or len(values) != len(names):
            raise TypeError("a TMS batch's image does not match its keys")
        tags = tuple(
            TagRows(key, _text(v), _refs(r)) for key, (v, r) in zip(names, values, strict=True)
        )
        images.append(
            ImageBatch(
                _text(region),
                _text(project),
                _text(image),
                tags,
                _ref(origin[0]) if origin else None,
            )
        )
    return ResourceBatch(_text(region), _text(project), names, tuple(images))


def _batch(
    region: object, project: object, image: object, tags: list[list[object]], *origin: object
) -> ImageBatch:
    if len(origin) > 1:
        raise TypeError("too many fields in a batch")
    return ImageBatch(
        _text(region),
        _text(project),
        _text(image),
        tuple(TagRows(_text(key), _text(value), _refs(refs)) for key, value, refs in tags),
        _ref(origin[0]) if origin else None,
    )


def _refs(values: object) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise TypeError("expected a list of row refs")
    return tuple(_ref(r) for r in values)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _ref(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError(f"expected a row ref, got {value!r}")
    return value


def decode_results(entry: str | bytes) -> tuple[list[int], RowResult]:
    """The refs and the result of one entry of a chunk's results list, as the result script
    writes it (``worker.lua.rows.RECORD_RESULTS``): "ref,ref,... " and the result's JSON."""
    if isinstance(entry, bytes):
        entry = entry.decode()
    refs, _, result = entry.partition(" ")
    return [int(ref) for ref in refs.split(",")], RowResult.from_json(result)


def latest_results(entries: Iterable[str | bytes]) -> dict[int, RowResult]:
    """Row ref -> result from a chunk's results list: a row's last entry wins (a retry made it
    pending, then gave it a new result). Callers drop rows whose final bit is clear."""
    found: dict[int, RowResult] = {}
    for entry in entries:
        refs, result = decode_results(entry)
        for ref in refs:
            found[ref] = result
    return found


def bit_items(refs: Sequence[int]) -> list[tuple[str, int | str]]:
    """BITFIELD_RO items reading bit ``ref`` of a bitmap for every ref (one round trip)."""
    return [("u1", ref) for ref in refs]


# Rows whose bits are read with one GETRANGE of the bytes they span, unless the span is this
# many times larger than a BITFIELD_RO of three arguments a row (a retry chunk's rows may lie
# far apart); then ``bit_items``.
SPAN_BYTES_PER_REF = 16


def bit_span(refs: Sequence[int]) -> tuple[int, int] | None:
    """The first and last byte of a bitmap holding bit ``ref`` for every ref, or None when
    the span is too sparse to be worth reading whole."""
    first, last = min(refs) // 8, max(refs) // 8
    return None if last - first + 1 > SPAN_BYTES_PER_REF * len(refs) else (first, last)


def set_bits(data: bytes, first: int, refs: Iterable[int]) -> set[int]:
    """The refs whose bit is set in ``data``, the bytes of a bitmap from byte ``first`` on
    (Redis's bit order: bit 0 is the high bit of byte 0; missing bytes are zeros)."""
    found = set()
    for ref in refs:
        index = ref // 8 - first
        if index < len(data) and data[index] >> (7 - ref % 8) & 1:
            found.add(ref)
    return found


def first_observed(entries: Iterable[str | bytes]) -> dict[int, str | None]:
    """Row ref -> the value a read kept for it (None: the key was absent), from a chunk's
    observed list; a row's first entry wins (the script writes each row once anyway)."""
    found: dict[int, str | None] = {}
    for entry in entries:
        if isinstance(entry, bytes):
            entry = entry.decode()
        refs, _, values = entry.partition(" ")
        for ref, value in zip(refs.split(","), json.loads(values), strict=True):
            found.setdefault(int(ref), value)
    return found
