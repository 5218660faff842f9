"""Every Redis key tagsweep uses, in one place: what it holds and who writes it.

All keys start with ``tagsweep:`` so that a shared Redis can hold other things, and so that
``tagsweep:job:{id}:*`` finds everything of one job.
"""

from __future__ import annotations

import hashlib

PREFIX = "tagsweep"

# Sorted set of live chunk leases, "{job}:{chunk}" scored by expiry (Redis time, ms).
# Written by workers (acquire, renew, release) and by the reaper (expired -> re-dispatched).
LEASES = f"{PREFIX}:leases"
# Hash "{job}:{chunk}" -> owner token of the lease above ("" once the reaper took it back).
LEASE_OWNERS = f"{PREFIX}:lease-owners"
# Sorted set of job ids by creation time (ms); written by submit (every job since the first
# version), read by status and jobs. Its members outlive expired jobs: an id here whose record
# is gone has expired (``forget`` removes the member too).
JOBS = f"{PREFIX}:jobs"
# Sorted set of live worker processes ("host:pid" of each Celery main process) scored by their
# last heartbeat (ms, Redis time). Written by workers every few seconds, read by the exporter.
WORKERS = f"{PREFIX}:workers"


def job(job_id: str) -> str:
    """Hash: the job record (state, totals, options, timestamps). Written by submit and
    workers (state changes); read by every command. ``started_at`` is set when a queued job's
    first chunk starts (again after a retry or resume); ``worked_before`` (rows worked before
    the latest retry or resume) is written by those, so that rates count only what the current
    pass worked."""
    return f"{PREFIX}:job:{job_id}"


def counts(job_id: str) -> str:
    """Hash: status -> number of rows final in it. Written only by the result script."""
    return f"{PREFIX}:job:{job_id}:counts"


def results(job_id: str) -> str:
    """Hash: invalid row ref ("i0", "i1", ...) -> JSON result of a row refused by validation
    (--skip-invalid). Written by submit; rows in chunks have their results in ``chunk_results``."""
    return f"{PREFIX}:job:{job_id}:results"


def final(job_id: str) -> str:
    """String used as a bitmap: bit ``ref`` is 1 once that row (of a chunk) has its result.
    Set by the result script (SETBIT returns the old bit, so a row is counted once however
    often it is recorded); cleared by retry and resume for the rows they send again."""
    return f"{PREFIX}:job:{job_id}:final"


def chunk_results(job_id: str, number: int) -> str:
    """List: results of the rows of original chunk ``number`` (retry chunks record into the
    chunk their rows came from), one entry per request or part of one: "ref,ref,... JSON"
    (``worker.formats.decode_results``). Appended by the result script with the refs it newly
    made final; a row's result is the last entry naming it while its ``final`` bit is set.
    Read by report, retry, resume and undo, one chunk at a time."""
    return f"{PREFIX}:job:{job_id}:results:{number}"


def chunk(job_id: str, number: int) -> str:
    """String: one chunk's image batches, compressed (``worker.formats.encode_chunk``). Written
    by submit/retry/undo, read by workers and by report, retry and undo."""
    return f"{PREFIX}:job:{job_id}:chunk:{number}"


def done_chunks(job_id: str) -> str:
    """Set: chunk numbers whose rows are all final. Written by workers."""
    return f"{PREFIX}:job:{job_id}:done-chunks"


def invalid_rows(job_id: str) -> str:
    """List: JSON of rows refused by validation (--skip-invalid), for the report."""
    return f"{PREFIX}:job:{job_id}:invalid"


def observed(job_id: str) -> str:
    """String used as a bitmap: bit ``ref`` is 1 once a read's finding for that row (the first
    ref of a tag) is kept in ``chunk_observed``. Set by the observe script of workers of jobs
    that read first (--backup, plan, undo); never cleared, so the first observation wins."""
    return f"{PREFIX}:job:{job_id}:observed"


def chunk_observed(job_id: str, number: int) -> str:
    """List: what the reads of original chunk ``number``'s rows found, one entry per read:
    "ref,ref,... [value, ...]" (JSON values; null: the key was absent). Appended by the
    observe script with the refs not observed before; read by report and undo."""
    return f"{PREFIX}:job:{job_id}:observed:{number}"


def verified(job_id: str, identity_key: str) -> str:
    """String: "ok" once a call of the job with this identity was not refused for its
    credentials; "probing" while the first call is out. Written by workers."""
    return f"{PREFIX}:job:{job_id}:verified:{identity_key}"


def identities(job_id: str) -> str:
    """Set: the identity keys of the ``verified`` keys above, so that retention and ``forget``
    find them. Written by the worker whose first call proved an identity."""
    return f"{PREFIX}:job:{job_id}:identities"


def job_keys(job_id: str, chunks: int, identity_keys: list[str]) -> list[str]:
    """Every key of one job (``chunks``: its ``next_chunk``), the record first: what retention
    gives a TTL and ``forget`` deletes. The job's resume key is named in its record."""
    fixed = [
        job(job_id),
        counts(job_id),
        results(job_id),
        done_chunks(job_id),
        invalid_rows(job_id),
        observed(job_id),
        identities(job_id),
        final(job_id),
    ]
    # Results and observations are kept per original chunk; naming them for retry chunks too
    # (which have none) costs an EXPIRE of a missing key, not a read of the record's "chunks".
    per_chunk = [
        key
        for number in range(chunks)
        for key in (
            chunk(job_id, number),
            chunk_results(job_id, number),
            chunk_observed(job_id, number),
        )
    ]
    return fixed + [verified(job_id, identity) for identity in identity_keys] + per_chunk


def resume(run_key: str) -> str:
    """String: the job id that ``tagsweep run`` made for these files and this target."""
    return f"{PREFIX}:resume:{run_key}"


def lease_member(job_id: str, number: int) -> str:
    """The member of ``LEASES`` and ``LEASE_OWNERS`` that names one chunk of a job."""
    return f"{job_id}:{number}"


def token_cache(identity_digest: str, project_id: str) -> str:
    """String: an IAM token, encrypted with a key only the workers hold; expires with it."""
    return f"{PREFIX}:token:{identity_digest}:{project_id}"


def token_lock(identity_digest: str, project_id: str) -> str:
    """String: "1" while one worker renews that token (SET NX, 15 s): renewal is single-flight
    across hosts. Written and deleted by that worker (``worker.tokencache``)."""
    return f"{token_cache(identity_digest, project_id)}:renewing"


def rate_bucket(endpoint: str, identity: str) -> str:
    """Hash: the shared send schedule of one (endpoint, identity), written by every worker's
    limiter (worker/scripts.py RESERVE, THROTTLED): ``tat`` (next free slot, Redis ms),
    ``rate`` (effective calls/s), ``updated``, ``known`` (calls/s the cloud was measured to
    accept), ``cut_at``, ``ramp`` ("1" until the first 429), ``limit`` and ``window_ms`` (the
    limit a 429 message named), ``hold`` ("1" while a window's quota is spent), ``probe_at``,
    ``released_at``, ``streak`` and ``streak_since`` (429s since the last accepted call).
    Expires an hour after its last use. Beside it, ``{key}:accepted:{second}`` and
    ``{key}:throttled:{second}`` (strings, 10 s): calls accepted and refused in each second.
    The identity is hashed: no secret, but Redis need not spell it out."""
    digest = hashlib.sha256(f"{endpoint}\n{identity}".encode()).hexdigest()[:24]
    return f"{PREFIX}:rate:{digest}"


def rate_memory(bucket: str) -> str:
    """Hash: what the cloud taught about one (endpoint, identity), so that the next job starts
    there instead of stampeding: ``limit`` and ``window_ms`` (from a 429 message) or
    ``known`` (calls/s measured). Written by the THROTTLED script, read when a schedule is
    created; kept 30 days after the last lesson. ``bucket`` is ``rate_bucket(...)``."""
    return f"{bucket}:learnt"
