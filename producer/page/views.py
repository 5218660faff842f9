"""What the job page shows, read through the job store: a job's status as ``tagsweep status``
computes it (``producer.status.JobStatus``), its call counters and its timeline."""

from __future__ import annotations

import time
from dataclasses import dataclass

from producer.errors import JobNotFound
from producer.status import JobStatus
from producer.store import JobStore
from worker.jobs import Job
from worker.keys import JobField
from worker.lua.rows import TIMELINE_BUCKET_MS

# A chart of more buckets than this (a job that ran for days) merges neighbours, so that the
# page stays small: one point per 10 s up to a day.
MAX_POINTS = 8640
# Jobs listed on ``/``, newest first.
LISTED_JOBS = 200


@dataclass(frozen=True)
class JobSummary:
    """A job's status and its call counters (all workers together)."""

    status: JobStatus
    calls: int
    throttled: int
    # The scope (user, ip, api) of the schedule whose 429 named the job's cloud limit.
    limit_scope: str = ""
    # Chunks written (grows with each retry and resume: ``JobField.NEXT_CHUNK``).
    next_chunk: int = 0

    @property
    def throttled_share(self) -> float | None:
        """Calls answered 429, as a share of all calls (None before any call)."""
        return self.throttled / self.calls if self.calls else None


@dataclass(frozen=True)
class Point:
    """One bucket of a job's timeline."""

    at_ms: int
    rows: int
    throttled: int


def summary_of(job_id: str, record: dict[str, str], counts: dict[str, int]) -> JobSummary:
    # The clock ``producer.status.read_status`` uses, so that page and status agree.
    status = JobStatus(Job.from_record(job_id, record), counts, int(time.time() * 1000))
    calls = int(record.get(JobField.CALLS) or 0)
    throttled = int(record.get(JobField.THROTTLED) or 0)
    scope = record.get(JobField.CLOUD_LIMIT_SCOPE, "")
    next_chunk = int(record.get(JobField.NEXT_CHUNK) or 0)
    return JobSummary(status, calls, throttled, scope, next_chunk)


def read_summary(store: JobStore, job_id: str) -> JobSummary:
    """One job, read as ``tagsweep status JOB`` reads it (``JobNotFound``: none here)."""
    record, counts = store.read_record_and_counts(job_id)
    if not record.get(JobField.STATE):
        raise JobNotFound(f"no job {job_id!r} in this Redis")
    return summary_of(job_id, record, counts)


def read_jobs(store: JobStore, *, limit: int = LISTED_JOBS) -> list[JobSummary]:
    """The newest ``limit`` jobs still kept, newest first."""
    found: list[JobSummary] = []
    for ids in store.job_ids(newest_first=True):
        for job_id, record, counts in store.records_and_counts(ids):
            if record.get(JobField.STATE):  # else expired, or not written whole
                found.append(summary_of(job_id, record, counts))
            if len(found) >= limit:
                return found
    return found


def timeline_points(raw: dict[str, int], job: Job, now_ms: int) -> list[Point]:
    """One point per bucket from the job's first to its last (its start to its end, or now,
    widened to any bucket with counts: rows worked before a retry or resume); [] before it
    started."""
    buckets = [int(name[1:]) for name in raw]
    if job.started_at_ms is None and not buckets:
        return []
    start = job.started_at_ms if job.started_at_ms is not None else now_ms
    end = job.finished_at_ms or now_ms
    first = min([start // TIMELINE_BUCKET_MS, *buckets])
    last = max([end // TIMELINE_BUCKET_MS, *buckets])
    step = -(-(last - first + 1) // MAX_POINTS)  # buckets a point, rounded up
    return [
        Point(
            bucket * TIMELINE_BUCKET_MS,
            sum(raw.get(f"r{b}", 0) for b in range(bucket, bucket + step)),
            sum(raw.get(f"t{b}", 0) for b in range(bucket, bucket + step)),
        )
        for bucket in range(first, last + 1, step)
    ]
