"""What the job page reads besides the records and counts: a job's timeline, and the chunks
whose rows did not all end as the job wished."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart
from worker import keys
from worker.lua.scan import CHUNKS_WITH_OTHER_STATUS

if TYPE_CHECKING:
    from redis.commands.core import Script
    from redis.typing import EncodableT, FieldT


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

    def write_timeline(self, job_id: str, fields: Mapping[str, int]) -> int:
        """Replace the job's timeline with ``fields`` ("r{bucket}", "t{bucket}" -> count), as
        the workers' flushes would have written it (``bench.page``); its bytes in Redis."""
        self.client.delete(keys.timeline(job_id))
        mapping: dict[FieldT, EncodableT] = {field: n for field, n in fields.items()}
        self.client.hset(keys.timeline(job_id), mapping=mapping)
        return int(self.client.memory_usage(keys.timeline(job_id), samples=0) or 0)
