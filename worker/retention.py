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

from typing import TYPE_CHECKING, cast

from worker import keys

if TYPE_CHECKING:
    import redis
    import redis.asyncio as aioredis

# Give a finished job's keys a TTL, or take the TTLs off (a retried job), some keys at a time.
# KEYS: the job's record, then some of its other keys; with ARGV[3] == '1' the last is the job's
# resume key, touched only while it still names this job (``run --new`` points it at a newer
# job). ARGV: "expire" or "persist", the job id, "1"/"0", and "1" for the last call of a job
# (the record itself is expired, deleted or persisted only then, since each call reads it).
# Returns the expiry (ms since the epoch) set, or 0 (still going, kept forever, or persisted).
# The PEXPIREATs come before the HSET: a script's first write decides whether Redis refuses it
# when out of memory, and PEXPIREAT (which frees memory) is allowed then.
APPLY_RETENTION = """
local record = KEYS[1]
local last = #KEYS
local final = ARGV[4] == '1'
if ARGV[3] == '1' then
  if redis.call('GET', KEYS[last]) ~= ARGV[2] then last = last - 1 end
end
if ARGV[1] == 'persist' then
  for i = 2, last do redis.call('PERSIST', KEYS[i]) end
  if final then
    redis.call('PERSIST', record)
    redis.call('HDEL', record, 'expires_at')
  end
  return 0
end
local h = redis.call('HMGET', record, 'state', 'finished_at', 'keep_ms')
if not h[1] or h[1] == 'queued' or h[1] == 'running' then return 0 end
local keep = tonumber(h[3] or '')
if not keep or keep <= 0 then return 0 end
local at = tonumber(h[2] or '0') + keep
local t = redis.call('TIME')
if at <= t[1] * 1000 + math.floor(t[2] / 1000) then
  for i = 2, last do redis.call('DEL', KEYS[i]) end
  if final then redis.call('DEL', record) end
  return at
end
for i = 2, last do redis.call('PEXPIREAT', KEYS[i], at) end
if final then
  redis.call('HSET', record, 'expires_at', at)
  redis.call('PEXPIREAT', record, at)
end
return at
"""
# Keys per script call: one call for a 10M-row job's 25,000 chunks blocked Redis for about
# 0.5 s; 1,000 keys a call keep each under about 20 ms.
KEYS_PER_CALL = 1000

# What the record says that the key list needs.
RECORD_FIELDS = ("next_chunk", "resume_key")


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
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.job(job_id), list(RECORD_FIELDS))
    pipe.smembers(keys.identities(job_id))
    fields, identity_keys = pipe.execute()
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
    """Expire a finished job's keys at ``finished_at + keep`` (or take the TTLs off)."""
    script = client.register_script(APPLY_RETENTION)
    job_keys, has_resume = read_keys(client, job_id)
    action = "persist" if persist else "expire"
    at = 0
    for call_keys, args in calls(job_keys, has_resume, action, job_id):
        at = int(cast(int, script(keys=call_keys, args=args)))
    return at


async def apply_retention_async(client: aioredis.Redis, job_id: str) -> int:
    """``apply_retention`` for workers (asyncio)."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.job(job_id), list(RECORD_FIELDS))
    pipe.smembers(keys.identities(job_id))
    fields, identity_keys = await pipe.execute()
    script = client.register_script(APPLY_RETENTION)
    at = 0
    for call_keys, args in calls(*all_keys(job_id, fields, identity_keys), "expire", job_id):
        at = int(await script(keys=call_keys, args=args))
    return at
