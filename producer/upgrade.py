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
from typing import TYPE_CHECKING, cast

from producer.jobstore import numbered_chunks
from worker import keys

if TYPE_CHECKING:
    import redis

# The value of the job record's ``layout`` field for jobs in the current layout.
LAYOUT = "2"


def upgrade_job(client: redis.Redis, job_id: str, record: dict[str, str]) -> None:
    """Convert an older job's results and observations, once (see the module's doc)."""
    if record.get("layout") == LAYOUT or "chunks" not in record:
        return
    observed_hash = client.type(keys.observed(job_id)) in ("hash", b"hash")
    kept: list[int] = []
    for number, batches in numbered_chunks(client, job_id, int(record["chunks"])):
        refs = [ref for batch in batches for tag in batch.tags for ref in tag.refs]
        _convert_results(client, job_id, number, refs)
        if observed_hash:
            firsts = [tag.refs[0] for batch in batches for tag in batch.tags]
            kept += _convert_observed(client, job_id, number, firsts)
    pipe = client.pipeline(transaction=True)
    if observed_hash:
        pipe.delete(keys.observed(job_id))
        for ref in kept:
            pipe.setbit(keys.observed(job_id), ref, 1)
    stale = [f for f, _ in client.hscan_iter(keys.results(job_id)) if not f.startswith("i")]
    if stale:
        pipe.hdel(keys.results(job_id), *stale)
    pipe.hset(keys.job(job_id), "layout", LAYOUT)
    pipe.execute()
    record["layout"] = LAYOUT


def _convert_results(client: redis.Redis, job_id: str, number: int, refs: list[int]) -> None:
    """One entry per distinct result of the chunk's rows, their bits set (counts are kept)."""
    found = cast(list[str | None], client.hmget(keys.results(job_id), [str(r) for r in refs]))
    grouped: dict[str, list[int]] = {}
    for ref, raw in zip(refs, found, strict=True):
        if raw is not None:
            grouped.setdefault(raw, []).append(ref)
    if not grouped:
        return
    pipe = client.pipeline(transaction=True)
    for raw, rows in grouped.items():
        pipe.rpush(keys.chunk_results(job_id, number), ",".join(map(str, rows)) + " " + raw)
        for ref in rows:
            pipe.setbit(keys.final(job_id), ref, 1)
    pipe.execute()


def _convert_observed(
    client: redis.Redis, job_id: str, number: int, firsts: list[int]
) -> list[int]:
    """The chunk's observations as one entry; returns the refs it holds."""
    found = cast(list[str | None], client.hmget(keys.observed(job_id), [str(r) for r in firsts]))
    rows = [(ref, raw) for ref, raw in zip(firsts, found, strict=True) if raw is not None]
    if rows and not client.llen(keys.chunk_observed(job_id, number)):
        refs = ",".join(str(ref) for ref, _ in rows)
        values = json.dumps([json.loads(raw) for _, raw in rows], ensure_ascii=False)
        client.rpush(keys.chunk_observed(job_id, number), f"{refs} {values}")
    return [ref for ref, _ in rows]
