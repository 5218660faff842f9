"""The stored formats: chunks (compressed, with an origin for retry batches) and result entries."""

from __future__ import annotations

import json

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
from worker.model import ImageBatch, RowStatus, TagRows

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
