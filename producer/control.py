"""Changing a job after it was submitted: cancel it, or queue some of its rows again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from producer.jobstore import numbered_chunks, reset_rows, rows_in
from producer.status import read_job, worked_rows
from producer.submit import DEFAULT_CHUNK_REQUESTS, write_chunks
from worker import keys
from worker.errors import TagsweepError
from worker.jobs import JobState
from worker.lua.jobs import STOP_JOB
from worker.model import ImageBatch, RowStatus
from worker.retention import apply_retention

if TYPE_CHECKING:
    import redis


class JobStateError(TagsweepError):
    """Raised when a job is not in a state that allows the command."""


def cancel_job(client: redis.Redis, job_id: str) -> bool:
    """Mark a queued or running job cancelled; workers record its unsent rows ``cancelled``."""
    read_job(client, job_id)
    stop = client.register_script(STOP_JOB)
    cancelled = bool(
        stop(keys=[keys.job(job_id)], args=[JobState.CANCELLED.value, "cancelled by user"])
    )
    if cancelled:  # it ended now, whether or not workers come to drain its rows
        apply_retention(client, job_id)
    return cancelled


def retry_job(
    client: redis.Redis,
    job_id: str,
    statuses: set[str],
    *,
    chunk_requests: int = DEFAULT_CHUNK_REQUESTS,
) -> int:
    """Forget the results of rows in ``statuses`` and write chunks for them again.

    Returns how many rows will be sent again; the caller queues the new chunks.
    """
    if RowStatus.INVALID.value in statuses:
        raise JobStateError("invalid rows cannot be retried: fix them and submit them anew")
    job = read_job(client, job_id)
    if not job.state.finished:
        raise JobStateError(f"job {job_id} is {job.state.value}; retry it once it has finished")
    rows = rows_in(client, job_id, job.chunks, statuses)
    if not rows:
        return 0
    reset_rows(client, job_id, rows)
    reopen_job(client, job_id)
    first = int(cast(str, client.hget(keys.job(job_id), "next_chunk")))
    count = write_chunks(
        client,
        job_id,
        _batches_for(client, job_id, job.chunks, set(rows)),
        first=first,
        size=chunk_requests,
    )
    client.hincrby(keys.job(job_id), "next_chunk", count)
    return len(rows)


def reopen_job(client: redis.Redis, job_id: str) -> None:
    """Make a finished job queued again; the rows worked so far are kept in ``worked_before``
    so that its rate counts only the rows worked from now on."""
    counts = {
        k: int(v) for k, v in cast(dict[str, str], client.hgetall(keys.counts(job_id))).items()
    }
    pipe = client.pipeline(transaction=True)
    pipe.hset(
        keys.job(job_id),
        mapping={
            "state": JobState.QUEUED.value,
            "reason": "",
            "worked_before": worked_rows(counts),
        },
    )
    pipe.hdel(keys.job(job_id), "finished_at", "requests", "failed_requests")
    pipe.execute()
    apply_retention(client, job_id, persist=True)  # queued again: nothing may expire


def _batches_for(
    client: redis.Redis, job_id: str, chunks: int, refs: set[int]
) -> Iterator[ImageBatch]:
    """The original batches cut down to the tags of ``refs``, each naming its chunk (where
    the results of its rows are kept)."""
    for number, batches in numbered_chunks(client, job_id, chunks):
        for batch in batches:
            tags = tuple(tag for tag in batch.tags if refs.intersection(tag.refs))
            if tags:
                yield ImageBatch(batch.region, batch.project_id, batch.image_id, tags, number)
