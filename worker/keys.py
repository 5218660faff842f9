"""Every Redis key tagsweep uses, in one place: what it holds and who writes it.

All keys start with ``tagsweep:`` so that a shared Redis can hold other things, and so that
``tagsweep:job:{id}:*`` finds everything of one job.
"""

from __future__ import annotations

import hashlib

PREFIX = "tagsweep"

# Sorted set of live chunk leases, "{job}:{chunk}" scored by expiry (Redis time, ms). Written
# by workers, the reaper (expired -> re-dispatched) and ``run`` (RELEASE_LEASE: a private
# Redis's leases left by an interrupted run); counted by the exporter.
LEASES = f"{PREFIX}:leases"
# Hash "{job}:{chunk}" -> owner token of the lease above ("" once the reaper took it back).
LEASE_OWNERS = f"{PREFIX}:lease-owners"
# Sorted set of job ids by creation time (ms); written by submit and undo (every job since the
# first version), read by status, jobs and the exporter. Its members outlive expired jobs: an id
# here whose record is gone has expired (``forget`` removes the member too).
JOBS = f"{PREFIX}:jobs"
# Sorted set of live worker processes ("host:pid" of each Celery main process) scored by their
# last heartbeat (ms, Redis time). Written by workers every few seconds, read by the exporter
# and by ``status`` (a job no live worker works is shown so).
WORKERS = f"{PREFIX}:workers"
# A worker whose last heartbeat in ``WORKERS`` is older than this is not counted live (by the
# exporter and by ``status``, which says when a job has no live worker).
WORKER_LIVE_S = 15.0


class JobField:
    """The fields of the job record (``job``), each with what it holds and who writes it.
    The command line, the workers' stores and ``worker.jobs.Job.from_record`` name them
    through these; the Lua scripts (worker/lua/, worker/limits/reserve.py and throttle.py)
    spell them in their text."""

    # Written by submit (and undo) when the job is written, never changed after.
    TOTAL = "total"  # rows, invalid ones included
    CHUNKS = "chunks"  # original chunks; written last, so its presence says the job is whole
    OPTIONS = "options"  # JobOptions JSON (``run --simulate`` points it at a new simulator)
    FILES = "files"  # JSON list of the input files' names
    CHECKSUM = "checksum"  # SHA-256 of the input files' bytes
    CREATED_AT = "created_at"  # ms
    # State: written by submit, workers (MARK_RUNNING, RECORD_RESULTS, STOP_JOB), cancel and
    # retry/resume (queued again).
    STATE = "state"  # JobState value
    REASON = "reason"  # why a job was aborted or cancelled
    # The status an abort's own cause gave rows (``unauthorized``: refused credentials), written
    # by workers with the abort (STOP_JOB), dropped when the job is queued again: resume sends
    # those rows again with the ``cancelled`` ones.
    RESEND = "resend"
    STARTED_AT = "started_at"  # ms, set when a queued job's first chunk starts
    FINISHED_AT = "finished_at"  # ms
    # Chunks: ``next_chunk`` (chunks written, retry chunks included) grows with retry and
    # resume; ``dispatched`` counts the chunks queued by submit, retry and undo (so that a
    # killed submission goes on where it stopped).
    NEXT_CHUNK = "next_chunk"
    DISPATCHED = "dispatched"
    # Counters added by the result script (retry and resume drop ``requests`` and
    # ``failed_requests``); ``worked_before`` (rows worked before the latest retry or resume)
    # is written by those, so that rates count only what the current pass did.
    REQUESTS = "requests"
    FAILED_REQUESTS = "failed_requests"
    CALLS = "calls"
    THROTTLED = "throttled"
    RETRIES = "retries"
    WORKED_BEFORE = "worked_before"
    # Time the job's rows were worked (ms): the union of the times its chunk leases were held,
    # added by the workers' lease renewals and releases (worker/lua/leases.py ADD_ACTIVE), and
    # where that sum ends (Redis ms). Idle time (an interrupted run, no worker) is not in it;
    # retry and resume of a stopped job drop both (a new pass), as they drop ``requests``.
    ACTIVE_MS = "active_ms"
    ACTIVE_AT = "active_at"
    # The shared rate now and the limit a 429 named, written by workers for status.
    EFFECTIVE_RATE = "effective_rate"
    CLOUD_LIMIT = "cloud_limit"
    # The scope (user, ip, api) of the schedule whose 429 named that limit (the job page).
    CLOUD_LIMIT_SCOPE = "cloud_limit_scope"
    # Retention (written by submit and undo; ``expires_at`` by the retention script).
    KEEP_MS = "keep_ms"
    RESUME_KEY = "resume_key"  # the job's ``resume`` key, which it shares with newer jobs
    EXPIRES_AT = "expires_at"
    # Written by undo in the source job (its undo job's id); ``forget`` of that undo job
    # removes it.
    UNDONE_BY = "undone_by"
    # "2" once the job is in the current layout (producer/store/upgrade.py).
    LAYOUT = "layout"


def job(job_id: str) -> str:
    """Hash: the job record, ``JobField`` above says each field and its writer. Read by
    every command and by workers."""
    return f"{PREFIX}:job:{job_id}"


def counts(job_id: str) -> str:
    """Hash: status -> number of rows final in it. Incremented by the result script (and by
    ``cancel``'s CANCEL_UNSENT, which runs its body); submit
    writes the count of invalid rows, and retry and resume take back the counts of the rows
    they send again."""
    return f"{PREFIX}:job:{job_id}:counts"


def results(job_id: str) -> str:
    """Hash: invalid row ref ("i0", "i1", ...) -> JSON result of a row refused by validation
    (--skip-invalid). Written by submit (the upgrade of an older job drops the other rows'
    fields, which it moves to ``chunk_results``); rows in chunks have their results there."""
    return f"{PREFIX}:job:{job_id}:results"


def final(job_id: str) -> str:
    """String used as a bitmap: bit ``ref`` is 1 once that row (of a chunk) has its result.
    Set by the result script (SETBIT returns the old bit, so a row is counted once however
    often it is recorded) and by the upgrade of an older job; cleared by retry and resume for
    the rows they send again."""
    return f"{PREFIX}:job:{job_id}:final"


def chunk_results(job_id: str, number: int) -> str:
    """List: results of the rows of original chunk ``number`` (retry chunks record into the
    chunk their rows came from), one entry per request or part of one: "ref,ref,... JSON"
    (``worker.formats.decode_results``). Appended by the result script with the refs it newly
    made final (and by the upgrade of an older job); a row's result is the last entry naming
    it while its ``final`` bit is set. Read by report, retry, resume and undo, one chunk at a
    time."""
    return f"{PREFIX}:job:{job_id}:results:{number}"


def chunk(job_id: str, number: int) -> str:
    """String: one chunk's image batches, compressed (``worker.formats.encode_chunk``). Written
    by submit/retry/undo, read by workers and by report, retry, undo and the upgrade."""
    return f"{PREFIX}:job:{job_id}:chunk:{number}"


def done_chunks(job_id: str) -> str:
    """Set: chunk numbers whose rows are all final. Written by workers (RELEASE_LEASE) and by
    ``cancel`` (CANCEL_UNSENT, for the chunks no worker holds); read by the lease script and by
    resume (the chunks still to send)."""
    return f"{PREFIX}:job:{job_id}:done-chunks"


def invalid_rows(job_id: str) -> str:
    """List: JSON of rows refused by validation (--skip-invalid): their ref ("i0", ...) and
    columns. Written by submit, read by the report."""
    return f"{PREFIX}:job:{job_id}:invalid"


def observed(job_id: str) -> str:
    """String used as a bitmap: bit ``ref`` is 1 once a read's finding for that row (the first
    ref of a tag) is kept in ``chunk_observed``. Set by the observe script of workers of jobs
    that read first (--backup, plan, undo), and by the upgrade of an older job (whose
    ``observed`` was a hash); never cleared, so the first observation wins."""
    return f"{PREFIX}:job:{job_id}:observed"


def chunk_observed(job_id: str, number: int) -> str:
    """List: what the reads of original chunk ``number``'s rows found, one entry per read:
    "ref,ref,... [value, ...]" (JSON values; null: the key was absent). Appended by the
    observe script with the refs not observed before (and by the upgrade of an older job);
    read by workers, report and undo."""
    return f"{PREFIX}:job:{job_id}:observed:{number}"


def verified(job_id: str, identity_key: str) -> str:
    """String: "ok" once a call of the job with this identity was not refused for its
    credentials; "probing" while the first call is out. Written by workers; deleted by
    resume (an aborted job's first call is tried again)."""
    return f"{PREFIX}:job:{job_id}:verified:{identity_key}"


def identities(job_id: str) -> str:
    """Set: the identity keys of the ``verified`` keys above, so that retention and ``forget``
    find them. Written by the worker whose first call proved an identity."""
    return f"{PREFIX}:job:{job_id}:identities"


def timeline(job_id: str) -> str:
    """Hash: per 10 s of Redis time (bucket ``ms // 10,000``), "r{bucket}" -> rows made final,
    "t{bucket}" -> calls answered 429 (buckets with some only). Added by the result script's
    flush; read by the job page (``producer.page``). Some 43 kB for an hour's job."""
    return f"{PREFIX}:job:{job_id}:timeline"


def failed_chunks(job_id: str) -> str:
    """String used as a bitmap: bit ``number`` is 1 once original chunk ``number``'s results
    list got a row of a status outside the job's goals (chunks / 8 bytes). Set by the result
    script (and ``cancel``'s); read by the job page, which reads those lists only: a superset,
    as a row sent again may have ended well since. A job recorded before it existed has none."""
    return f"{PREFIX}:job:{job_id}:failed-chunks"


def job_keys(job_id: str, chunks: int, identity_keys: list[str]) -> list[str]:
    """Every key of one job (``chunks``: its ``next_chunk``), the record first: what retention
    gives a TTL and ``forget`` deletes. The job's resume key is named in its record."""
    fixed = [job(job_id), counts(job_id), results(job_id), done_chunks(job_id)]
    fixed += [invalid_rows(job_id), observed(job_id), identities(job_id), final(job_id)]
    fixed += [timeline(job_id), failed_chunks(job_id)]
    # Results and observations are kept per original chunk; naming them for retry chunks too
    # (which have none) costs an EXPIRE of a missing key, not a read of the record's "chunks".
    per_chunk = [
        make(job_id, number)
        for number in range(chunks)
        for make in (chunk, chunk_results, chunk_observed)
    ]
    return fixed + [verified(job_id, identity) for identity in identity_keys] + per_chunk


def resume(run_key: str) -> str:
    """String: the job id that ``submit``/``run`` made for these files and this target (or
    ``undo`` for its source job). Written by those commands (``--new`` points it at a new
    job); read by them to find the job again, and by retention and ``forget``."""
    return f"{PREFIX}:resume:{run_key}"


def lease_member(job_id: str, number: int) -> str:
    """The member of ``LEASES`` and ``LEASE_OWNERS`` that names one chunk of a job."""
    return f"{job_id}:{number}"


def token_cache(identity_digest: str, project_id: str) -> str:
    """String: an IAM token, encrypted with a key only the workers hold; expires with it."""
    return f"{PREFIX}:token:{identity_digest}:{project_id}"


def token_lock(identity_digest: str, project_id: str) -> str:
    """String: "1" while one worker renews that token (SET NX, 15 s): renewal is single-flight
    across hosts. Written and deleted by that worker (``worker.cloud.tokencache``)."""
    return f"{token_cache(identity_digest, project_id)}:renewing"


def rate_bucket(endpoint: str, holder: str, *, api: str = "ims", scope: str = "user") -> str:
    """Hash: one shared send schedule, written by every worker's limiter
    (worker/limits/reserve.py RESERVE, throttle.py THROTTLED): the calls of one API family
    (``api``: ims, tms) to one endpoint counted against one allowance, whose ``scope`` the
    gateway's 429 names (worker/limits/scopes.py): ``user`` (``holder``: the identity), ``ip``
    (``holder``: the egress id of the workers leaving through one address) or ``api`` (no
    holder: everyone). Fields: ``tat`` (next free slot, Redis ms), ``rate`` (effective
    calls/s), ``updated``, ``known`` (calls/s the cloud was measured to accept), ``cut_at``,
    ``ramp`` ("1" until the first 429), ``limit`` and ``window_ms`` (the limit a 429 message
    named), ``hold`` ("1" while a window's quota is spent), ``probe_at``, ``released_at``,
    ``streak`` and ``streak_since`` (429s since the last accepted call). Expires an hour after
    its last use. The keys below are named after it. The holder is hashed: no secret, but Redis
    need not spell it out. IMS's user schedules keep the digest they had before APIs and scopes
    were named, so that what was learnt for them is still found."""
    if scope == "api":
        holder = ""
    named = (
        (endpoint, holder) if (api, scope) == ("ims", "user") else (api, scope, endpoint, holder)
    )
    digest = hashlib.sha256("\n".join(named).encode()).hexdigest()[:24]
    return f"{PREFIX}:rate:{digest}"


def rate_memory(bucket: str) -> str:
    """Hash: what the cloud taught about one schedule (``bucket``: ``rate_bucket(...)``), so the
    next job starts there instead of stampeding: ``limit`` and ``window_ms`` (a 429 message) or
    ``known`` (calls/s measured). Written by THROTTLED, read when a schedule is created and by
    ``tagsweep doctor`` (``worker.store.accounts``); kept 30 days after the last lesson."""
    return f"{bucket}:learnt"


def rate_best(bucket: str) -> str:
    """String: the most calls/s the cloud accepted on the schedule ``bucket`` in a whole second
    (Redis time) with no 429 in it or the next, so that the next job starts there rather than
    at 20/s. Written by the workers' store (``worker.store.rates``, keeping the highest) when a
    limiter's reservation measures more than its process told it so far (RESERVE's
    ``clean_per_s``), read when a limiter first uses the schedule; kept 30 days after the last
    write."""
    return f"{bucket}:best"


def rate_accepted(bucket: str) -> str:
    """Prefix of strings ``{prefix}{second}`` (Redis time, s: the scripts append it, since only
    Redis knows it): calls of the schedule ``bucket`` the cloud accepted in that second, as
    reported by the limiters with their reservations (RESERVE); read by THROTTLED to measure
    the rate the cloud accepts. Each expires after 10 s."""
    return f"{bucket}:accepted:"


def rate_throttled(bucket: str) -> str:
    """Prefix of strings ``{prefix}{second}``, as ``rate_accepted``: calls of the schedule
    ``bucket`` answered 429 in that second. Written and read by THROTTLED; expire after 10 s."""
    return f"{bucket}:throttled:"


# What TMS named as IMS images' resource type for an account is kept this long.
TMS_RESOURCE_TYPE_TTL_S = 30 * 24 * 3600


def tms_resource_type(domain_id: str) -> str:
    """String: the resource type TMS's providers list names for IMS images in one account
    (domain), "" when it lists none. Written by the first worker that asks TMS for it
    (``worker.store.accounts``, from ``worker.engine.tmsline``), read by every worker before
    a TMS call; expires after ``TMS_RESOURCE_TYPE_TTL_S`` (30 days), so it is asked again."""
    return f"{PREFIX}:tms:resource-type:{domain_id}"
