"""What is queued and what is queued again: submission keys, the count of chunks queued, the
chunks not done, and what an interrupted run left behind (leases, probe claims)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart
from worker import keys
from worker.keys import JobField
from worker.lua.leases import RELEASE_LEASE

if TYPE_CHECKING:
    from redis.commands.core import Script


class DispatchStore(StorePart):
    """Finding a job again by its submission key, and the state of its chunks' queueing."""

    @cached_property
    def _release(self) -> Script:
        # The workers' script (worker/lua/leases.py), registered once per store.
        return self.client.register_script(RELEASE_LEASE)

    def submitted_job(self, key: str) -> str | None:
        """The job already written for this submission key, if its record is complete."""
        job_id = cast(str | None, self.client.get(keys.resume(key)))
        if job_id and self.client.hexists(keys.job(job_id), JobField.CHUNKS):
            return job_id
        return None

    def claim_job_id(self, key: str, job_id: str) -> str:
        """The job id of a submission key: the one a killed submission had started, else
        ``job_id``."""
        self.client.set(keys.resume(key), job_id, nx=True)
        return str(self.client.get(keys.resume(key)))

    def point_resume_key(self, key: str, job_id: str) -> None:
        """Make a submission key find ``job_id`` from now on (``--new``)."""
        self.client.set(keys.resume(key), job_id)

    def dispatched(self, job_id: str) -> tuple[int, int]:
        """(chunks queued so far, chunks written)."""
        record = self.client.hmget(keys.job(job_id), [JobField.DISPATCHED, JobField.NEXT_CHUNK])
        first, end = cast(list[str | None], record)
        return int(first or 0), int(end or 0)

    def mark_dispatched(self, job_id: str, count: int) -> None:
        """Count the job's first ``count`` chunks as queued."""
        self.client.hset(keys.job(job_id), JobField.DISPATCHED, count)

    def pending_chunks(self, job_id: str) -> list[int]:
        """Chunks of a job not marked done (original and retry chunks alike)."""
        end = int(cast(str, self.client.hget(keys.job(job_id), JobField.NEXT_CHUNK)))
        done = {int(n) for n in cast(set[str], self.client.smembers(keys.done_chunks(job_id)))}
        return [n for n in range(end) if n not in done]

    def release_leases(self, job_id: str, chunks: list[int]) -> None:
        """Drop the leases of these chunks, whoever holds them, as their owners would (the
        workers' RELEASE_LEASE, not marking them done)."""
        members = [keys.lease_member(job_id, n) for n in chunks]
        if not members:
            return
        owners = cast(list[str | None], self.client.hmget(keys.LEASE_OWNERS, members))
        lease_keys = [keys.LEASES, keys.LEASE_OWNERS, keys.done_chunks(job_id)]
        for number, member, owner in zip(chunks, members, owners, strict=True):
            if owner is not None:
                self._release(keys=lease_keys, args=[member, owner, number, "0"])

    def clear_probe_claims(self, job_id: str) -> None:
        """Forget which credentials the job's first calls proved, or claimed to try: the
        first call is tried again."""
        found = list(self.client.scan_iter(match=keys.verified(job_id, "*"), count=100))
        if found:
            self.client.delete(*found)
