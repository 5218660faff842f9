"""Jobs written before results were kept per request: converted once, when a command reads one.

Earlier versions kept a job's results in one hash (row ref -> JSON result) and what its reads
found in another (``observed``: row ref -> JSON value). A command that reads such a job (report,
retry, resume, undo, cancel) first rewrites them in the current layout (the ``final`` and
``observed`` bitmaps and a list per chunk, ``worker.keys``), then marks the record with
``layout``. Each step can run again after a crash: a bit set twice is set, an entry written twice
names the same result, and the old observations are dropped in the transaction that sets their
bits. Workers of the older version must not be working the job meanwhile (finish or cancel a
job before upgrading its workers).
"""

from __future__ import annotations

import json
from typing import cast

from producer.store.rows import RowStore
from worker import keys
from worker.keys import JobField

# The value of the job record's ``layout`` field for jobs in the current layout.
LAYOUT = "2"


class UpgradeStore(RowStore):
    """The conversion of an older job's results and observations (see the module's doc)."""

    def upgrade_job(self, job_id: str, record: dict[str, str]) -> None:
        """Convert an older job, once; ``record`` (its record) is marked converted too."""
        if record.get(JobField.LAYOUT) == LAYOUT or JobField.CHUNKS not in record:
            return
        observed_hash = self.client.type(keys.observed(job_id)) in ("hash", b"hash")
        kept: list[int] = []
        for number, batches in self.numbered_chunks(job_id, int(record[JobField.CHUNKS])):
            refs = [ref for batch in batches for tag in batch.tags for ref in tag.refs]
            self._convert_results(job_id, number, refs)
            if observed_hash:
                firsts = [tag.refs[0] for batch in batches for tag in batch.tags]
                kept += self._convert_observed(job_id, number, firsts)
        pipe = self.client.pipeline(transaction=True)
        if observed_hash:
            pipe.delete(keys.observed(job_id))
            for ref in kept:
                pipe.setbit(keys.observed(job_id), ref, 1)
        results = self.client.hscan_iter(keys.results(job_id))
        stale = [field for field, _ in results if not field.startswith("i")]
        if stale:
            pipe.hdel(keys.results(job_id), *stale)
        pipe.hset(keys.job(job_id), JobField.LAYOUT, LAYOUT)
        pipe.execute()
        record[JobField.LAYOUT] = LAYOUT

    def _convert_results(self, job_id: str, number: int, refs: list[int]) -> None:
        """One entry per distinct result of the chunk's rows, their bits set (counts are
        kept)."""
        fields = [str(r) for r in refs]
        found = cast(list[str | None], self.client.hmget(keys.results(job_id), fields))
        grouped: dict[str, list[int]] = {}
        for ref, raw in zip(refs, found, strict=True):
            if raw is not None:
                grouped.setdefault(raw, []).append(ref)
        if not grouped:
            return
        pipe = self.client.pipeline(transaction=True)
        for raw, rows in grouped.items():
            pipe.rpush(keys.chunk_results(job_id, number), ",".join(map(str, rows)) + " " + raw)
            for ref in rows:
                pipe.setbit(keys.final(job_id), ref, 1)
        pipe.execute()

    def _convert_observed(self, job_id: str, number: int, firsts: list[int]) -> list[int]:
        """The chunk's observations as one entry; returns the refs it holds."""
        fields = [str(r) for r in firsts]
        found = cast(list[str | None], self.client.hmget(keys.observed(job_id), fields))
        rows = [(ref, raw) for ref, raw in zip(firsts, found, strict=True) if raw is not None]
        if rows and not self.client.llen(keys.chunk_observed(job_id, number)):
            refs = ",".join(str(ref) for ref, _ in rows)
            values = json.dumps([json.loads(raw) for _, raw in rows], ensure_ascii=False)
            self.client.rpush(keys.chunk_observed(job_id, number), f"{refs} {values}")
        return [ref for ref, _ in rows]
