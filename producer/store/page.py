"""What the job page reads besides the records and counts: a job's timeline and one chunk."""

from __future__ import annotations

from typing import cast

from producer.store.part import StorePart
from worker import keys
from worker.formats import decode_chunk
from worker.model import ImageBatch


class PageStore(StorePart):
    """The job page's reads (``producer.page``)."""

    def timeline(self, job_id: str) -> dict[str, int]:
        """The job's timeline hash (``keys.timeline``): "r{bucket}"/"t{bucket}" -> count."""
        raw = cast(dict[str, str], self.client.hgetall(keys.timeline(job_id)))
        return {field: int(n) for field, n in raw.items()}

    def chunk_batches(self, job_id: str, number: int) -> list[ImageBatch]:
        """One chunk's image batches ([] once gone)."""
        text = self.client.get(keys.chunk(job_id, number))
        return [] if text is None else decode_chunk(text)
