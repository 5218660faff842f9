"""What the job page reads besides the records and counts: a job's timeline, and the chunks
whose rows did not all end as the job wished."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart
from worker import keys
from worker.formats import decode_chunk
from worker.lua.scan import CHUNKS_WITH_OTHER_STATUS
from worker.model import ImageBatch

if TYPE_CHECKING:
    from redis.commands.core import Script


class PageStore(StorePart):
    """The job page's reads (``producer.page``)."""

    @cached_property
    def _other_status(self) -> Script:
        return self.client.register_script(CHUNKS_WITH_OTHER_STATUS)

    def timeline(self, job_id: str) -> dict[str, int]:
        """The job's timeline hash (``keys.timeline``): "r{bucket}"/"t{bucket}" -> count."""
        raw = cast(dict[str, str], self.client.hgetall(keys.timeline(job_id)))
        return {field: int(n) for field, n in raw.items()}

    def chunks_with_other_status(
        self, job_id: str, numbers: Sequence[int], wished: Collection[str]
    ) -> list[int]:
        """Which of chunks ``numbers`` hold a result whose status is not in ``wished``."""
        lists = [keys.chunk_results(job_id, number) for number in numbers]
        found = self._other_status(keys=lists, args=[" ".join(sorted(wished))])
        return [numbers[int(position) - 1] for position in cast(list[int], found)]

    def results_entries(self, job_id: str, number: int) -> list[str]:
        """The raw results list of chunk ``number`` (``worker.formats.latest_results``)."""
        return cast(list[str], self.client.lrange(keys.chunk_results(job_id, number), 0, -1))

    def chunk_batches(self, job_id: str, number: int) -> list[ImageBatch]:
        """One chunk's image batches ([] once gone)."""
        text = self.client.get(keys.chunk(job_id, number))
        return [] if text is None else decode_chunk(text)
