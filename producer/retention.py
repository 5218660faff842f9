"""How long a finished job is kept (``--keep``), ``tagsweep forget``, and what the commands
say about a job's expiry. The TTLs themselves are set by ``worker.retention``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from producer.errors import ForgetRefused, JobExpired
from producer.store import JobStore
from worker.jobs import JobOptions, JobState, Mode
from worker.keys import JobField

if TYPE_CHECKING:
    import redis

DEFAULT_KEEP = "30d"
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_keep(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``2s``, ``1w`` -> milliseconds; ``0`` keeps forever."""
    if text.strip() == "0":
        return 0
    found = _DURATION.match(text.lower())
    if not found:
        raise click.BadParameter(
            f"{text!r} is not a duration: a number and a unit (s, m, h, d, w), e.g. 30d, "
            "or 0 to keep forever",
            param_hint="--keep",
        )
    return int(float(found[1]) * _UNITS_S[found[2]] * 1000)


keep_option = click.option(
    "--keep",
    "keep_ms",
    default=DEFAULT_KEEP,
    show_default=True,
    envvar="TAGSWEEP_KEEP",
    callback=lambda _ctx, _param, value: parse_keep(str(value)),
    help="How long the job's data (results, backup) stays in Redis after it ends: 30d, 12h, "
    "...; 0 keeps it until `tagsweep forget` [env TAGSWEEP_KEEP].",
)


def record_keep(client: redis.Redis, job_id: str, *, keep_ms: int, resume_key: str | None) -> None:
    """Write what retention needs into a new job's record (a job already over at submission,
    every row invalid, gets its TTLs now)."""
    store = JobStore(client)
    store.write_keep(job_id, keep_ms=keep_ms, resume_key=resume_key)
    store.apply_retention(job_id)


def keep_of(client: redis.Redis, job_id: str) -> int:
    """A job's ``--keep`` in ms (the default for a job written before retention existed)."""
    keep = JobStore(client).keep_ms(job_id)
    return keep if keep is not None else parse_keep(DEFAULT_KEEP)


def is_expired(client: redis.Redis, job_id: str) -> bool:
    """Whether ``job_id`` was a job here whose data is gone (the index outlives it)."""
    return JobStore(client).is_expired(job_id)


def check_not_expired(client: redis.Redis, job_id: str) -> None:
    """``JobExpired`` with one line for a job whose data has expired."""
    if is_expired(client, job_id):
        raise JobExpired(
            f"job {job_id} has expired: its data was deleted --keep after it ended "
            "(default 30 days; `tagsweep jobs` lists the jobs still kept)"
        )


def iso_ms(ms: int, *, human: bool = False) -> str:
    """ISO 8601 UTC to the second (``human``: a space instead of the ``T``)."""
    text = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return text.replace("T", " ") if human else text


def holds_backup(record: dict[str, str]) -> bool:
    """Whether a job's record tells of a backup that was not undone."""
    options = JobOptions.from_json(record.get(JobField.OPTIONS, "{}"))
    return options.backup and options.mode is Mode.DELETE and not record.get(JobField.UNDONE_BY)


def backup_expires(record: dict[str, str]) -> str | None:
    """For a job with a backup not undone: when it expires ("never" when kept forever)."""
    if not holds_backup(record):
        return None
    expires = record.get(JobField.EXPIRES_AT)
    return iso_ms(int(expires), human=True) if expires else "never"


def backup_note(record: dict[str, str]) -> str | None:
    """For a job with a backup not undone that will expire: when (None otherwise)."""
    expires = backup_expires(record)
    if expires is None or expires == "never":
        return None
    return f"backup expires {expires} (undo before then)"


def expiry(client: redis.Redis, job_id: str) -> dict[str, str | None]:
    """When a job's data expires and, for a backup not undone, when its backup does (ISO
    8601; None: not set, or kept forever), for ``status``."""
    record = JobStore(client).read_record(job_id)
    expires = record.get(JobField.EXPIRES_AT)
    at = iso_ms(int(expires)) if expires else None
    return {"expires_at": at, "backup_expires_at": at if backup_note(record) else None}


def pending_backup(client: redis.Redis, job_id: str) -> str | None:
    """``backup_expires`` of a job by id (None for an unknown job, or no backup to lose)."""
    record = JobStore(client).read_record(job_id)
    return backup_expires(record) if record else None


def forget_job(client: redis.Redis, job_id: str) -> int:
    """Delete every key of a finished job now; return how many keys were deleted."""
    store = JobStore(client)
    record = store.read_record(job_id)
    if not record:
        check_not_expired(client, job_id)
        raise JobExpired(f"no job {job_id!r} in this Redis")
    state = record.get(JobField.STATE)
    if state in (JobState.QUEUED.value, JobState.RUNNING.value):
        raise ForgetRefused(
            f"job {job_id} is {state}: cancel it (`tagsweep cancel {job_id}`) and "
            "forget it once it has ended"
        )
    held = store.held_chunks(job_id)
    if held:
        raise ForgetRefused(
            f"job {job_id} is {state} but {held} of its chunk(s) are still held by workers "
            "(marking their rows): try again once the workers have let go"
        )
    undo_of = JobOptions.from_json(record.get(JobField.OPTIONS, "{}")).undo_of
    deleted = store.delete_job(job_id, undo_of=undo_of)
    from worker.broker import queue_keys  # Celery's settings: loaded by forget only

    # Its messages too: a worker would otherwise take them later to find nothing.
    store.drop_queued(job_id, queue_keys())
    return deleted
