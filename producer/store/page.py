"""What the job page reads besides the records and counts: a job's timeline, and the rows
that did not all end as the job wished (its failure index, and the failing entries of the
chunks it names)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, cast

from redis.client import NEVER_DECODE

from producer.store.part import StorePart
from worker import keys
from worker.formats import set_bits
from worker.jobs import RowResult
from worker.lua.scan import FAILED_ENTRIES

if TYPE_CHECKING:
    from redis.commands.core import Script
    from redis.typing import EncodableT, FieldT


@dataclass(frozen=True)
class FailedEntries:
    """Rows of some chunks outside the job's goals, of one status and error: how many, and
    the first entries (chunk number, final rows whose last entry it is, result)."""

    status: str
    error_code: str
    rows: int
    entries: list[tuple[int, list[int], RowResult]]


class PageStore(StorePart):
    """The job page's reads (``producer.page``)."""

    @cached_property
    def _failed_entries(self) -> Script:
        return self.client.register_script(FAILED_ENTRIES)

    def timeline(self, job_id: str) -> dict[str, int]:
        """The job's timeline hash (``keys.timeline``): "r{bucket}"/"t{bucket}" -> count."""
        raw = cast(dict[str, str], self.client.hgetall(keys.timeline(job_id)))
        return {field: int(n) for field, n in raw.items()}

    def failed_chunks(self, job_id: str) -> list[int]:
        """The chunks in the job's failure index (``keys.failed_chunks``, a bitmap), in order."""
        # The bitmap's raw bytes (the client decodes replies, a bitmap is no text).
        data = self.client.execute_command(  # type: ignore[no-untyped-call]
            "GET", keys.failed_chunks(job_id), **{NEVER_DECODE: []}
        )
        found = cast(bytes | None, data) or b""
        return sorted(set_bits(found, 0, range(len(found) * 8)))

    def failed_entries(
        self, job_id: str, numbers: Sequence[int], wished: Collection[str], shown: int
    ) -> list[FailedEntries]:
        """The final rows of chunks ``numbers`` whose last result is not in ``wished``, by
        group, with the first entries of each until they hold ``shown`` rows (FAILED_ENTRIES)."""
        lists = [keys.chunk_results(job_id, number) for number in numbers]
        from_json = RowResult.from_json
        found = self._failed_entries(
            keys=[keys.final(job_id), *lists], args=[" ".join(sorted(wished)), shown]
        )
        return [
            FailedEntries(
                status,
                error,
                int(rows),
                [
                    (numbers[int(at) - 1], [int(ref) for ref in refs.split(",")], from_json(text))
                    for at, refs, text in zip(raw[::3], raw[1::3], raw[2::3], strict=True)
                ],
            )
            for status, error, rows, raw in cast(list[tuple[str, str, int, list[str]]], found)
        ]

    def write_timeline(self, job_id: str, fields: Mapping[str, int]) -> int:
        """Replace the job's timeline with ``fields`` ("r{bucket}", "t{bucket}" -> count), as
        the workers' flushes would have written it (``bench.page``); its bytes in Redis."""
        self.client.delete(keys.timeline(job_id))
        mapping: dict[FieldT, EncodableT] = {field: n for field, n in fields.items()}
        self.client.hset(keys.timeline(job_id), mapping=mapping)
        return int(self.client.memory_usage(keys.timeline(job_id), samples=0) or 0)

    def failed_chunks_bytes(self, job_id: str) -> int:
        """The bytes in Redis of the job's failure index (``bench.page``)."""
        return int(self.client.memory_usage(keys.failed_chunks(job_id), samples=0) or 0)

    def drop_failed_chunks(self, job_id: str) -> None:
        """Delete the job's failure index, as a job recorded before it (``bench.page``)."""
        self.client.delete(keys.failed_chunks(job_id))
