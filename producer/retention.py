"""How long a finished job is kept (``--keep``), ``tagsweep forget``, and what the commands
say about a job's expiry. The TTLs themselves are set by ``worker.retention``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import click

from producer.errors import ForgetRefused, JobExpired
from worker import keys
from worker.jobs import JobOptions, Mode
from worker.retention import apply_retention, read_keys

if TYPE_CHECKING:
    import redis
    from redis.typing import EncodableT, FieldT

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
    fields: dict[FieldT, EncodableT] = {"keep_ms": keep_ms}
    if resume_key:
        fields["resume_key"] = resume_key
    client.hset(keys.job(job_id), mapping=fields)
    apply_retention(client, job_id)


def keep_of(client: redis.Redis, job_id: str) -> int:
    """A job's ``--keep`` in ms (the default for a job written before retention existed)."""
    keep = client.hget(keys.job(job_id), "keep_ms")
    return int(cast(str, keep)) if keep is not None else parse_keep(DEFAULT_KEEP)


def is_expired(client: redis.Redis, job_id: str) -> bool:
    """Whether ``job_id`` was a job here whose data is gone (the index outlives it)."""
    return client.zscore(keys.JOBS, job_id) is not None and not client.exists(keys.job(job_id))


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
    options = JobOptions.from_json(record.get("options", "{}"))
    return options.backup and options.mode is Mode.DELETE and not record.get("undone_by")


def backup_expires(record: dict[str, str]) -> str | None:
    """For a job with a backup not undone: when it expires ("never" when kept forever)."""
    if not holds_backup(record):
        return None
    expires = record.get("expires_at")
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
    record = cast(dict[str, str], client.hgetall(keys.job(job_id)))
    expires = record.get("expires_at")
    at = iso_ms(int(expires)) if expires else None
    return {"expires_at": at, "backup_expires_at": at if backup_note(record) else None}


def pending_backup(client: redis.Redis, job_id: str) -> str | None:
    """``backup_expires`` of a job by id (None for an unknown job, or no backup to lose)."""
    record = cast(dict[str, str], client.hgetall(keys.job(job_id)))
    return backup_expires(record) if record else None


def forget_job(client: redis.Redis, job_id: str) -> int:
    """Delete every key of a finished job now; return how many keys were deleted."""
    record = cast(dict[str, str], client.hgetall(keys.job(job_id)))
    if not record:
        check_not_expired(client, job_id)
        raise JobExpired(f"no job {job_id!r} in this Redis")
    if record.get("state") in ("queued", "running"):
        raise ForgetRefused(
            f"job {job_id} is {record['state']}: cancel it (`tagsweep cancel {job_id}`) and "
            "forget it once it has ended"
        )
    job_keys, has_resume = read_keys(client, job_id)
    if has_resume == "1" and client.get(job_keys[-1]) != job_id:
        job_keys = job_keys[:-1]  # the resume key names a newer job of the same files
    batches = [job_keys[start : start + 1000] for start in range(0, len(job_keys), 1000)]
    # Not a transaction: 25,000 chunks in one MULTI would hold Redis for a quarter second.
    pipe = client.pipeline(transaction=False)
    for batch in batches:
        pipe.unlink(*batch)
    pipe.zrem(keys.JOBS, job_id)
    undo_of = JobOptions.from_json(record.get("options", "{}")).undo_of
    if undo_of:  # the source job may be undone again, by a new undo job
        pipe.hdel(keys.job(undo_of), "undone_by")
    deleted = pipe.execute()
    return sum(int(n) for n in deleted[: len(batches)])
