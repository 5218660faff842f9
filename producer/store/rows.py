"""A job's rows in Redis as the commands read and change them: chunks, results, observations.

Workers write results per request into a list per chunk and mark each row final in a bitmap
(``worker.keys.final``, ``worker.keys.chunk_results``); the commands read them here, one chunk
at a time, so that the format is parsed in one place (``worker.formats``) and memory stays bounded
by one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart
from worker import keys
from worker.formats import bit_items, decode_chunk, encode_chunk, first_observed, latest_results
from worker.jobs import RowResult
from worker.lua.rows import CANCEL_UNSENT
from worker.model import Batch, ImageBatch, RowStatus, image_batches

if TYPE_CHECKING:
    from redis.commands.core import Script

# Chunks written per round trip.
PIPELINE_CHUNKS = 200


class RowStore(StorePart):
    """Chunks, the results and observations of their rows, and the rows refused by validation."""

    def write_chunks(self, job_id: str, chunks: Iterable[list[Batch]], *, first: int) -> int:
        """Store chunks numbered from ``first``; return how many were written."""
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for number, chunk in enumerate(chunks, start=first):
            pipe.set(keys.chunk(job_id, number), encode_chunk(chunk))
            count += 1
            if count % PIPELINE_CHUNKS == 0:
                pipe.execute()
        pipe.execute()
        return count

    @cached_property
    def _cancel_unsent(self) -> Script:
        return self.client.register_script(CANCEL_UNSENT)

    def chunk_batches(self, job_id: str, number: int) -> list[ImageBatch] | None:
        """The batches of one chunk, one per image (None: not in Redis)."""
        text = self.client.get(keys.chunk(job_id, number))
        return None if text is None else list(image_batches(decode_chunk(text)))

    def cancel_unsent(
        self, job_id: str, number: int, batches: Sequence[ImageBatch], result: RowResult
    ) -> int | None:
        """Record ``result`` (cancelled) for the rows of chunk ``number`` that have none, and
        mark the chunk done, unless a live worker holds its lease (CANCEL_UNSENT): the rows
        newly recorded, or None when a worker holds the chunk."""
        lists: dict[int, int] = {}
        lines = []
        for batch in batches:
            origin = number if batch.origin is None else batch.origin
            index = lists.setdefault(origin, len(lists) + 1)
            refs = ",".join(str(ref) for tag in batch.tags for ref in tag.refs)
            lines.append(f"{index} {result.status.value} {refs} {result.to_json()}")
        result_keys = [keys.chunk_results(job_id, origin) for origin in lists]
        answer = self._cancel_unsent(
            keys=[
                keys.final(job_id),
                keys.counts(job_id),
                keys.job(job_id),
                *result_keys,
                keys.timeline(job_id),
                keys.failed_chunks(job_id),
                keys.LEASES,
                keys.LEASE_OWNERS,
                keys.done_chunks(job_id),
            ],
            # As RECORD_RESULTS: no request, no goal (the job has ended), no calls.
            args=[
                *(0, 0, "", 0, 0, 0, "\n".join(lines), 0),
                *(keys.lease_member(job_id, number), number),
            ],
        )
        return None if answer[4] == "busy" else int(answer[0])

    def numbered_chunks(self, job_id: str, chunks: int) -> Iterator[tuple[int, list[ImageBatch]]]:
        """(number, batches) of chunks 0 .. ``chunks`` - 1, one at a time (a missing one
        skipped); a TMS batch gives one batch per image, as the readers of rows want them."""
        for number in range(chunks):
            text = self.client.get(keys.chunk(job_id, number))
            if text is not None:
                yield number, list(image_batches(decode_chunk(text)))

    def final_refs(self, job_id: str, refs: Sequence[int]) -> set[int]:
        """Which of these rows have a result (their bits in the job's ``final`` bitmap)."""
        if not refs:
            return set()
        items = bit_items(refs)
        bits = self.client.bitfield_ro(keys.final(job_id), *items[0], items=items[1:])
        return {ref for ref, bit in zip(refs, bits, strict=True) if bit}

    def chunk_results(self, job_id: str, number: int) -> dict[int, RowResult]:
        """Row ref -> result of the final rows of original chunk ``number`` (and of the retry
        chunks that sent its rows again)."""
        entries = cast(list[str], self.client.lrange(keys.chunk_results(job_id, number), 0, -1))
        found = latest_results(entries)
        final = self.final_refs(job_id, list(found))
        return {ref: result for ref, result in found.items() if ref in final}

    def rows_in(self, job_id: str, chunks: int, statuses: set[str]) -> dict[int, tuple[int, str]]:
        """Row ref -> (its chunk, its status) for the rows whose final status is in
        ``statuses`` (rows refused by validation are in no chunk and never listed)."""
        found: dict[int, tuple[int, str]] = {}
        for number in range(chunks):
            for ref, result in self.chunk_results(job_id, number).items():
                if result.status.value in statuses:
                    found[ref] = (number, result.status.value)
        return found

    def reset_rows(self, job_id: str, rows: dict[int, tuple[int, str]]) -> None:
        """Make rows pending again (their final bits cleared, their counts taken back) in one
        transaction; their old entries stay in the lists until a new result supersedes them."""
        pipe = self.client.pipeline(transaction=True)
        for ref, (_, status) in rows.items():
            pipe.setbit(keys.final(job_id), ref, 0)
            pipe.hincrby(keys.counts(job_id), status, -1)
        pipe.execute()

    def write_invalid_rows(
        self, job_id: str, rows: Sequence[tuple[str, RowResult, list[str]]]
    ) -> None:
        """Rows refused by validation, (ref, result, columns) each, in one transaction: their
        results, their columns for the report, and their count (written again whole: a
        submission killed half-way writes them again)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(keys.invalid_rows(job_id))
        for ref, result, columns in rows:
            pipe.hset(keys.results(job_id), ref, result.to_json())
            pipe.rpush(keys.invalid_rows(job_id), json.dumps([ref, *columns]))
        if rows:
            pipe.hset(keys.counts(job_id), RowStatus.INVALID.value, len(rows))
        pipe.execute()

    def invalid_rows(self, job_id: str) -> Iterator[tuple[str, list[str], RowResult | None]]:
        """(ref, columns, result) of the rows refused by validation, in input order."""
        for entry in cast(list[str], self.client.lrange(keys.invalid_rows(job_id), 0, -1)):
            ref, *columns = json.loads(entry)
            raw = cast(str | None, self.client.hget(keys.results(job_id), ref))
            yield ref, columns, None if raw is None else RowResult.from_json(raw)

    def observed_values(self, job_id: str, number: int, refs: Sequence[int]) -> list[str | None]:
        """The JSON of what the job's reads found for these rows of chunk ``number`` (None: not
        read; "null": the key was absent)."""
        if not refs:
            return []
        entries = cast(list[str], self.client.lrange(keys.chunk_observed(job_id, number), 0, -1))
        found = first_observed(entries)
        return [
            json.dumps(found[ref], ensure_ascii=False) if ref in found else None for ref in refs
        ]
