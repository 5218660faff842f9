"""Retention: a finished job's keys expire ``keep`` after it ended; nothing of a queued or
running job ever expires.

A job carries its ``keep_ms`` in its record (written at submission; ``0`` keeps it forever, and
a job written before retention existed has none and is kept too). When a job's last row is
final, the worker that recorded it gives every key of the job a TTL ending at
``finished_at + keep_ms`` (an absolute time, so applying it twice changes nothing); ``retry``
takes the TTLs off again before it queues rows. Keys are listed from the record
(``keys.job_keys``) rather than found by SCAN, which would walk the whole keyspace of a shared
Redis once per job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker import keys
from worker.keys import JobField
from worker.store.sync import SyncStore

if TYPE_CHECKING:
    import redis

    from worker.store.jobs import JobRecords

# The script (``worker.lua.jobs.APPLY_RETENTION``) takes the record and some keys a call.
# Keys per script call: one call for a 10M-row job's 25,000 chunks blocked Redis for about
# 0.5 s; 1,000 keys a call keep each under about 20 ms.
KEYS_PER_CALL = 1000

# What the record says that the key list needs.
RECORD_FIELDS = (JobField.NEXT_CHUNK, JobField.RESUME_KEY)


def all_keys(
    job_id: str, fields: list[str | None], identity_keys: set[str]
) -> tuple[list[str], str]:
    """Every key of a job from its record's ``RECORD_FIELDS`` and its identities set, and
    "1" when the last is its resume key (else "0")."""
    next_chunk, resume_key = fields
    found = keys.job_keys(job_id, int(next_chunk or 0), sorted(identity_keys))
    return ([*found, resume_key], "1") if resume_key else (found, "0")


def read_keys(client: redis.Redis, job_id: str) -> tuple[list[str], str]:
    """Every key a job has (or may have), as ``all_keys`` gives them."""
    fields, identity_keys = SyncStore(client).key_fields(job_id, RECORD_FIELDS)
    return all_keys(job_id, fields, identity_keys)


def calls(
    job_keys: list[str], has_resume: str, action: str, job_id: str
) -> list[tuple[list[str], list[str]]]:
    """The script calls (keys, args) that cover ``job_keys``, the record's own last."""
    record, rest = job_keys[0], job_keys[1:]
    slices = [rest[i : i + KEYS_PER_CALL] for i in range(0, len(rest), KEYS_PER_CALL)] or [[]]
    return [
        (
            [record, *part],
            [
                action,
                job_id,
                has_resume if n == len(slices) - 1 else "0",
                str(int(n == len(slices) - 1)),
            ],
        )
        for n, part in enumerate(slices)
    ]


def apply_retention(client: redis.Redis, job_id: str, *, persist: bool = False) -> int:
    """Expire a finished job's keys at ``finished_at + keep`` (or take the TTLs off).
    (Workers: ``apply_retention_async``.)"""
    store = SyncStore(client)
    job_keys, has_resume = read_keys(client, job_id)
    action = "persist" if persist else "expire"
    at = 0
    for call_keys, args in calls(job_keys, has_resume, action, job_id):
        at = store.retention_call(call_keys, args)
    return at


async def apply_retention_async(store: JobRecords, job_id: str) -> int:
    """``apply_retention`` for workers (asyncio), through their store."""
    fields, identity_keys = await store.key_fields(job_id, RECORD_FIELDS)
    at = 0
    for call_keys, args in calls(*all_keys(job_id, fields, identity_keys), "expire", job_id):
        at = await store.retention_call(call_keys, args)
    return at
