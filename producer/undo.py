"""``tagsweep undo JOB``: a new job that re-creates the tags a ``--backup`` job deleted.

Its rows are the tags the job deleted while they were present (the backup read found them):
one row per tag, with the value the backup kept. Workers read each image's tags first and
never overwrite a key that was set again since (``kept_newer``). The undo job is written like
any other (chunks, then the record) and found again by its source's id, so running ``undo``
twice follows the same undo job instead of making a second one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from producer.errors import SimulatedJob, UndoRefused
from producer.retention import keep_of, record_keep
from producer.status import read_job
from producer.store import JobStore
from producer.submit import (
    DEFAULT_CHUNK_REQUESTS,
    claim_job_id,
    find_submitted,
    write_chunks,
    write_record,
)
from worker import keys
from worker.jobs import Api, Job, JobState, Mode
from worker.model import ImageBatch, RowStatus, TagRows

if TYPE_CHECKING:
    import redis


def undo_key(job_id: str) -> str:
    """The submission key that finds the undo job of ``job_id``."""
    return f"undo:{job_id}"


# What a job that cannot be undone is, with its article ("an undo job", not "a undo job").
NOT_UNDOABLE = {Mode.UNDO: "an undo job", Mode.PLAN: "a plan job (read-only)"}


def check_undoable(job: Job) -> None:
    options = job.options
    if options.mode is not Mode.DELETE:
        raise UndoRefused(
            f"job {job.job_id} is {NOT_UNDOABLE[options.mode]}; only a deleting job can be undone"
        )
    if not options.backup:
        raise UndoRefused(
            f"job {job.job_id} ran without --backup: the values it deleted were not kept, "
            "so it cannot be undone"
        )
    if options.simulated:
        raise SimulatedJob(
            job.job_id,
            "nothing was deleted in the cloud. To try undo, run `tagsweep simulator` and the "
            "job against it (docs/commands.md: the worked example of select)",
        )
    if not job.state.finished:
        raise UndoRefused(
            f"job {job.job_id} is still {job.state.value}: let it finish (or cancel it with "
            f"`tagsweep cancel {job.job_id}`), then undo it"
        )


@dataclass
class _Counter:
    rows: int = 0


def restorable(client: redis.Redis, job: Job, counter: _Counter) -> Iterator[ImageBatch]:
    """The job's batches cut down to the tags it deleted while present, each with the value
    the backup kept and a new row ref (counted in ``counter``). Reads one chunk at a time."""
    store = JobStore(client)
    for number, batches in store.numbered_chunks(job.job_id, job.chunks):
        firsts = [tag.refs[0] for batch in batches for tag in batch.tags]
        if not firsts:
            continue
        found = store.chunk_results(job.job_id, number)
        results = [found.get(ref) for ref in firsts]
        kept = store.observed_values(job.job_id, number, firsts)
        answers = iter(zip(results, kept, strict=True))
        for batch in batches:
            tags = []
            for tag in batch.tags:
                result, previous = next(answers)
                if result is None or previous is None:
                    continue
                value = json.loads(previous)
                if result.status is not RowStatus.DELETED or value is None:
                    continue
                tags.append(TagRows(tag.key, value, (counter.rows,)))
                counter.rows += 1
            if tags:
                yield ImageBatch(batch.region, batch.project_id, batch.image_id, tuple(tags))


def prepare_undo(
    client: redis.Redis,
    job_id: str,
    *,
    rate_per_s: float | None = None,
    chunk_requests: int = DEFAULT_CHUNK_REQUESTS,
) -> tuple[str, bool]:
    """Write the undo job of ``job_id``, or find the one written before.

    Returns (undo job id, whether it existed). Raises ``UndoRefused`` for a job that cannot be
    undone, and ``JobNotFound`` for an unknown job.
    """
    source = read_job(client, job_id)
    check_undoable(source)
    key = undo_key(job_id)
    if found := find_submitted(client, key):
        return found, True
    undo_id = claim_job_id(client, key)
    options = replace(
        source.options,
        mode=Mode.UNDO,
        api=Api.V2,
        backup=False,
        match_values=False,
        undo_of=job_id,
        rate_per_s=rate_per_s or source.options.rate_per_s,
    )
    counter = _Counter()
    chunks = write_chunks(
        client, undo_id, restorable(client, source, counter), first=0, size=chunk_requests
    )
    state = JobState.QUEUED if counter.rows else JobState.COMPLETED
    files = [f"undo of job {job_id}"]
    now_ms = int(time.time() * 1000)
    write_record(client, undo_id, state, counter.rows, chunks, options, files, "", now_ms)
    record_keep(client, undo_id, keep_ms=keep_of(client, job_id), resume_key=keys.resume(key))
    JobStore(client).mark_undone(job_id, undo_id)
    return undo_id, False
