"""The stored formats: chunks (compressed, with an origin for retry batches) and result entries."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from worker.errors import MalformedChunk
from worker.formats import (
    CHUNK_MARK,
    decode_chunk,
    decode_results,
    encode_chunk,
    first_observed,
    latest_results,
)
from worker.jobs import RowResult
from worker.model import ImageBatch, ResourceBatch, RowStatus, TagRows, image_batches

BATCHES = [
    ImageBatch("r", "p", "img-1", (TagRows("k", "välue", (0, 5)), TagRows("k2", "", (1,)))),
    ImageBatch("r", "p", "img-2", (TagRows("k", "v", (9,)),), origin=3),
]


def test_a_chunk_comes_back_as_it_went_in_and_is_text() -> None:
    text = encode_chunk(BATCHES)
    assert text.startswith(CHUNK_MARK)
    assert text.isascii()
    assert decode_chunk(text) == BATCHES
    assert decode_chunk(text.encode()) == BATCHES


def test_a_plain_json_chunk_of_an_earlier_version_is_still_read() -> None:
    old = json.dumps([["r", "p", "img-1", [["k", "välue", [0, 5]], ["k2", "", [1]]]]])
    assert decode_chunk(old) == BATCHES[:1]


@pytest.mark.parametrize(
    "text",
    [CHUNK_MARK + "not base64!", CHUNK_MARK + "aGVsbG8=", '[["r", "p", "i", [], 1, 2]]', "[[1]]"],
)
def test_a_damaged_chunk_is_refused(text: str) -> None:
    with pytest.raises(MalformedChunk):
        decode_chunk(text)


def test_the_last_entry_naming_a_row_wins_and_the_first_observation_wins() -> None:
    failed = RowResult(RowStatus.FAILED, 503, None, "", 1, None, 5)
    deleted = RowResult(RowStatus.DELETED, 204, None, None, 1, "r", 6)
    entries = [f"1,2 {failed.to_json()}", f"3 {deleted.to_json()}", f"2 {deleted.to_json()}"]
    assert decode_results(entries[0]) == ([1, 2], failed)
    assert latest_results(entries) == {1: failed, 2: deleted, 3: deleted}
    assert first_observed(['4,6 ["a",null]', '6 ["later"]']) == {4: "a", 6: None}


def test_a_tms_batch_names_its_keys_once_and_comes_back_with_each_images_rows() -> None:
    """A chunk of a TMS batch (keys once, per image its values and refs, a retry's origin)
    beside an IMS one decodes to the same records, and is smaller than its images apart."""
    images = tuple(
        ImageBatch(
            "r",
            "p",
            f"{i:08d}-0000-4000-8000-000000000000",
            tuple(TagRows(k, f"v{i}", (i * 3 + n,)) for n, k in enumerate(("a", "b", "c"))),
            origin=4 if i == 7 else None,
        )
        for i in range(20)
    )
    group = ResourceBatch("r", "p", ("a", "b", "c"), images)
    text = encode_chunk([group, BATCHES[0]])
    assert decode_chunk(text) == [group, BATCHES[0]]
    assert list(image_batches([group, BATCHES[0]])) == [*images, BATCHES[0]]

    def plain(chunk: str) -> str:
        return zlib.decompress(base64.b64decode(chunk[1:])).decode()

    assert plain(text).count('"a"') == 1
    assert len(plain(encode_chunk([group]))) < 0.85 * len(plain(encode_chunk(list(images))))


def test_a_tms_batch_whose_image_does_not_match_its_keys_is_malformed() -> None:
    bad = json.dumps([["r", "p", ["a", "b"], [["img", [["v", [1]]]]]]])
    with pytest.raises(MalformedChunk):
        decode_chunk(bad)
