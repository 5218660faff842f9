"""What a worker's main process (and the commands that share its code) reads and writes in
Redis without an event loop: expired leases taken back, the live-workers set, the server's
eviction and persistence settings, and the retention of a job's keys."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import cast

import redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from worker import keys
from worker.jobs import JobState
from worker.keys import JobField
from worker.lua.jobs import APPLY_RETENTION
from worker.lua.leases import BEAT, REAP_LEASES, RELEASE_LEASE


class SyncStore:
    """Redis access of the synchronous side (``client`` decodes responses)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    # Each script registered once per store (as the async stores do in ``__init__``).
    @cached_property
    def _reap(self) -> Script:
        return self.redis.register_script(REAP_LEASES)

    @cached_property
    def _release(self) -> Script:
        return self.redis.register_script(RELEASE_LEASE)

    @cached_property
    def _beat(self) -> Script:
        return self.redis.register_script(BEAT)

    @cached_property
    def _retention(self) -> Script:
        return self.redis.register_script(APPLY_RETENTION)

    def reap_expired(self, grace_ms: int, limit: int) -> list[str]:
        """Take back expired leases (each given ``grace_ms`` and no owner): their members."""
        found = self._reap(keys=[keys.LEASES, keys.LEASE_OWNERS], args=[grace_ms, limit])
        return [str(member) for member in found]

    def job_state(self, job_id: str) -> JobState | None:
        state = self.redis.hget(keys.job(job_id), JobField.STATE)
        return None if state is None else JobState(str(state))

    def free_lease(self, job_id: str, number: int) -> None:
        """Drop a reaped lease (its owner is "") without marking the chunk done."""
        self._release(
            keys=[keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)],
            args=[keys.lease_member(job_id, number), "", number, "0"],
        )

    def beat(self, name: str) -> None:
        """Say that worker process ``name`` is alive (Redis time)."""
        self._beat(keys=[keys.WORKERS], args=[name])

    def leave(self, name: str) -> None:
        """Take worker process ``name`` out of the live-workers set."""
        self.redis.zrem(keys.WORKERS, name)

    def live_workers(self, since_ms: float) -> int:
        """How many worker processes beat at or after ``since_ms`` (Redis time)."""
        return int(self.redis.zcount(keys.WORKERS, since_ms, "+inf"))

    def eviction_policy(self) -> str | None:
        """The server's ``maxmemory-policy`` (from INFO, else CONFIG); None if both refuse."""
        try:
            return str(self.redis.info("memory")["maxmemory_policy"])
        except (RedisError, KeyError):
            pass
        try:
            found = self.redis.config_get("maxmemory-policy")
        except RedisError:
            return None
        return str(found["maxmemory-policy"]) if "maxmemory-policy" in found else None

    def persistent(self) -> bool | None:
        """Whether the server writes AOF or RDB snapshots; None when it cannot be told."""
        try:
            if int(self.redis.info("persistence").get("aof_enabled", 0)):
                return True
        except RedisError:
            return None
        try:
            save = self.redis.config_get("save").get("save")
        except RedisError:
            return None  # CONFIG disabled: RDB settings unknown
        return None if save is None else bool(str(save).strip())

    def key_fields(self, job_id: str, fields: Sequence[str]) -> tuple[list[str | None], set[str]]:
        """``fields`` of a job's record and its identity keys: what its key list needs."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.job(job_id), list(fields))
        pipe.smembers(keys.identities(job_id))
        found, identity_keys = pipe.execute()
        return found, identity_keys

    def retention_call(self, call_keys: list[str], args: list[str]) -> int:
        """One call of the retention script (``worker.retention.calls`` makes them)."""
        return int(cast(int, self._retention(keys=call_keys, args=args)))
