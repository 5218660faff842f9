"""Changing a job after it was submitted: cancel it, or queue some of its rows again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from producer.batching import DEFAULT_MAX_TAGS_PER_REQUEST, group_for_tms
from producer.errors import JobStateError, SimulatedJob
from producer.status import read_job, worked_rows
from producer.store import JobStore
from producer.submit import DEFAULT_CHUNK_REQUESTS, write_chunks
from worker.jobs import Api, Job, JobState, RowResult
from worker.model import Batch, ImageBatch, RowStatus

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Cancelled:
    """What ``cancel_job`` did."""

    rows: int  # rows recorded cancelled at once
    held: int  # chunks live workers hold: they record their unsent rows cancelled themselves


def cancel_job(client: redis.Redis, job_id: str) -> Cancelled | None:
    """Mark a queued or running job cancelled (None if it had ended), and record at once the
    rows of every chunk no live worker holds ``cancelled``: a job queued with no worker alive
    ends now, not when some worker comes to drain its chunks."""
    read_job(client, job_id)
    store = JobStore(client)
    reason = "cancelled by user"
    if not store.stop_job(job_id, JobState.CANCELLED, reason):
        return None
    result = RowResult(RowStatus.CANCELLED, error_message=reason, finished_at_ms=store.now_ms())
    rows = held = 0
    for number in store.pending_chunks(job_id):
        batches = store.chunk_batches(job_id, number)
        marked = None if batches is None else store.cancel_unsent(job_id, number, batches, result)
        held += marked is None
        rows += marked or 0
    store.apply_retention(job_id)  # it ended now, whether or not workers come to drain rows
    return Cancelled(rows, held)


def retry_job(
    client: redis.Redis,
    job_id: str,
    statuses: set[str],
    *,
    chunk_requests: int = DEFAULT_CHUNK_REQUESTS,
    api: Api | None = None,
) -> int:
    """Forget the results of rows in ``statuses`` and write chunks for them again, sent
    through ``api`` when given (else the job's own).

    Returns how many rows will be sent again; the caller queues the new chunks.
    """
    if RowStatus.INVALID.value in statuses:
        raise JobStateError("invalid rows cannot be retried: fix them and submit them anew")
    job = read_job(client, job_id)
    if not job.state.finished:
        raise JobStateError(f"job {job_id} is {job.state.value}; retry it once it has finished")
    if job.options.simulated:
        raise SimulatedJob(
            job_id, "run the same command again (with --simulate --new to start over)"
        )
    store = JobStore(client)
    rows = store.rows_in(job_id, job.chunks, statuses)
    if not rows:
        return 0
    store.reset_rows(job_id, rows)
    if api is not None and api is not job.options.api:
        job = replace(job, options=replace(job.options, api=api))
        store.set_options(job_id, job.options.to_json())
    reopen_job(client, job_id)
    count = write_chunks(
        client,
        job_id,
        _requests_for(store, job, set(rows)),
        first=store.next_chunk(job_id),
        size=chunk_requests,
    )
    store.add_chunks(job_id, count)
    return len(rows)


def _requests_for(store: JobStore, job: Job, refs: set[int]) -> Iterator[Batch]:
    """The requests that send ``refs`` again: per image, or grouped again for TMS."""
    images = _batches_for(store, job.job_id, job.chunks, refs)
    if job.options.sending_api.uses_tms:
        return group_for_tms(images, max_tags=DEFAULT_MAX_TAGS_PER_REQUEST)
    return images


def reopen_job(client: redis.Redis, job_id: str) -> None:
    """Make a finished job queued again; the rows worked so far are kept in ``worked_before``
    so that its rate counts only the rows worked from now on."""
    store = JobStore(client)
    store.reopen_job(job_id, worked_before=worked_rows(store.read_counts(job_id)))
    store.apply_retention(job_id, persist=True)  # queued again: nothing may expire


def _batches_for(store: JobStore, job_id: str, chunks: int, refs: set[int]) -> Iterator[ImageBatch]:
    """The original batches cut down to the tags of ``refs``, each naming its chunk (where
    the results of its rows are kept)."""
    for number, batches in store.numbered_chunks(job_id, chunks):
        for batch in batches:
            tags = tuple(tag for tag in batch.tags if refs.intersection(tag.refs))
            if tags:
                yield ImageBatch(batch.region, batch.project_id, batch.image_id, tags, number)
