"""Turning a checked collection into a job: the record, the chunks, then the messages.

Order matters for crash safety: the job record and every chunk are written before any message
is sent, so a worker never receives a chunk it cannot read.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from producer.batching import iter_requests
from producer.collect import Collection
from producer.errors import InputError, RowError
from producer.store import JobStore
from producer.store.upgrade import LAYOUT
from worker.jobs import JobOptions, JobState, RowResult
from worker.keys import JobField
from worker.model import Batch, ImageBatch, RowStatus

if TYPE_CHECKING:
    import redis
    from redis.typing import EncodableT, FieldT

DEFAULT_CHUNK_REQUESTS = 100

Dispatch = Callable[[str, int], None]


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


def files_checksum(files: list[str]) -> str:
    """SHA-256 over the bytes of every file in order (stdin is not re-read: it counts as "-")."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0")
        if name == "-":
            continue
        try:
            with Path(name).open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except OSError as exc:
            raise InputError(name, f"cannot open: {exc.strerror or exc}") from None
    return digest.hexdigest()


def chunk_batches(batches: Iterator[Batch], size: int) -> Iterator[list[Batch]]:
    """Consecutive groups of ``size`` requests."""
    while chunk := list(itertools.islice(batches, size)):
        yield chunk


def write_chunks(
    client: redis.Redis, job_id: str, batches: Iterator[Batch], *, first: int, size: int
) -> int:
    """Store chunks of ``size`` requests numbered from ``first``; return how many were
    written."""
    return JobStore(client).write_chunks(job_id, chunk_batches(batches, size), first=first)


def read_chunks(client: redis.Redis, job_id: str, chunks: int) -> Iterator[list[ImageBatch]]:
    """The batches of chunks 0 .. ``chunks`` - 1, one chunk at a time (a missing one skipped)."""
    for _, batches in JobStore(client).numbered_chunks(job_id, chunks):
        yield batches


def create_job(
    client: redis.Redis,
    collection: Collection,
    *,
    options: JobOptions,
    max_tags: int,
    chunk_requests: int = DEFAULT_CHUNK_REQUESTS,
    skip_invalid: bool = False,
    checksum: str = "",
    job_id: str | None = None,
) -> tuple[str, int]:
    """Write a job (chunks, invalid rows, then the record); return (job id, chunks).

    Nothing is queued. Every write is idempotent, so a submission killed half-way is written
    again over itself under the same job id (chunks come out the same from the same files).
    """
    job_id = job_id or new_job_id()
    invalid = collection.errors if skip_invalid else []
    total = collection.valid + collection.duplicates + len(invalid)
    now_ms = int(time.time() * 1000)
    requests = iter_requests(collection, max_tags=max_tags, api=options.sending_api)
    chunks = write_chunks(client, job_id, requests, first=0, size=chunk_requests)
    _write_invalid(client, job_id, invalid, now_ms)
    state = JobState.QUEUED if total > len(invalid) else _final_state(invalid)
    files = [span.name for span in collection.files]
    write_record(client, job_id, state, total, chunks, options, files, checksum, now_ms)
    return job_id, chunks


def write_record(
    client: redis.Redis,
    job_id: str,
    state: JobState,
    total: int,
    chunks: int,
    options: JobOptions,
    files: list[str],
    checksum: str,
    now_ms: int,
) -> None:
    """Write the job record (last: its "chunks" field tells that the job is whole)."""
    record: dict[FieldT, EncodableT] = {
        JobField.STATE: state.value,
        JobField.TOTAL: total,
        JobField.CHUNKS: chunks,
        JobField.NEXT_CHUNK: chunks,
        JobField.DISPATCHED: 0,
        JobField.OPTIONS: options.to_json(),
        JobField.FILES: json.dumps(files),
        JobField.CHECKSUM: checksum,
        JobField.CREATED_AT: now_ms,
        JobField.LAYOUT: LAYOUT,
    }
    if state.finished:
        record[JobField.FINISHED_AT] = now_ms
    JobStore(client).write_record(job_id, record, created_at_ms=now_ms)


def _final_state(invalid: list[RowError]) -> JobState:
    return JobState.COMPLETED_WITH_FAILURES if invalid else JobState.COMPLETED


def _write_invalid(client: redis.Redis, job_id: str, invalid: list[RowError], now_ms: int) -> None:
    """Invalid rows get their final result now, and their columns are kept for the report."""
    rows = [
        # Invalid rows are not in any chunk; their refs are "i" and their position.
        (
            f"i{number}",
            RowResult(RowStatus.INVALID, error_message=str(error), finished_at_ms=now_ms),
            list(error.fields),
        )
        for number, error in enumerate(invalid)
    ]
    JobStore(client).write_invalid_rows(job_id, rows)


def find_submitted(client: redis.Redis, key: str) -> str | None:
    """The job already written for this submission key, if its record is complete."""
    return JobStore(client).submitted_job(key)


def claim_job_id(client: redis.Redis, key: str) -> str:
    """The job id for a submission key: the one a killed submission had started, or a new one."""
    return JobStore(client).claim_job_id(key, new_job_id())


def point_resume_key(client: redis.Redis, key: str, job_id: str) -> None:
    """Make a submission key find ``job_id`` from now on (``--new``)."""
    JobStore(client).point_resume_key(key, job_id)


def dispatch_pending(client: redis.Redis, dispatch: Dispatch, job_id: str) -> int:
    """Queue the job's chunks not queued yet; the count is kept as they go, so a killed
    submission resumes where it stopped (at most the one chunk in flight is sent twice, and
    workers skip a chunk already done). Returns how many were queued."""
    store = JobStore(client)
    first, end = store.dispatched(job_id)
    for number in range(first, end):
        dispatch(job_id, number)
        store.mark_dispatched(job_id, number + 1)
    return max(0, end - first)
