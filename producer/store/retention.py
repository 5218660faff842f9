"""How long a job's keys are kept, and ``forget``: the Redis side of ``producer.retention``.

The TTLs themselves are set by the workers' retention script (``worker.retention``), run here
too so that a job that ends at the command line (cancel, every row invalid) gets them as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart
from worker import keys
from worker.keys import JobField
from worker.retention import apply_retention, read_keys

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

# Keys deleted per UNLINK.
UNLINK_BATCH = 1000


class RetentionStore(StorePart):
    """A job's ``--keep``, its TTLs, its expiry, and deleting it."""

    def write_keep(self, job_id: str, *, keep_ms: int, resume_key: str | None) -> None:
        """Write what retention needs into a job's record."""
        fields: dict[FieldT, EncodableT] = {JobField.KEEP_MS: keep_ms}
        if resume_key:
            fields[JobField.RESUME_KEY] = resume_key
        self.client.hset(keys.job(job_id), mapping=fields)

    def keep_ms(self, job_id: str) -> int | None:
        """A job's ``--keep`` in ms (None: a job written before retention existed)."""
        keep = cast(str | None, self.client.hget(keys.job(job_id), JobField.KEEP_MS))
        return int(keep) if keep is not None else None

    def apply_retention(self, job_id: str, *, persist: bool = False) -> int:
        """Expire a finished job's keys ``keep`` after it ended (``persist``: take the TTLs
        off); returns the expiry set, in ms, or 0."""
        return apply_retention(self.client, job_id, persist=persist)

    def is_expired(self, job_id: str) -> bool:
        """Whether ``job_id`` was a job here whose data is gone (the index outlives it)."""
        indexed = self.client.zscore(keys.JOBS, job_id) is not None
        return indexed and not self.client.exists(keys.job(job_id))

    def held_chunks(self, job_id: str) -> int:
        """How many of a job's chunks a worker holds a live lease on (Redis time)."""
        live = cast(list[str], self.client.zrangebyscore(keys.LEASES, f"({self.now_ms()}", "+inf"))
        return sum(1 for member in live if member.rpartition(":")[0] == job_id)

    def delete_job(self, job_id: str, *, undo_of: str | None) -> int:
        """Delete every key of a job and its entry in the index; the job it undid (``undo_of``)
        may then be undone again. Returns how many keys were deleted."""
        job_keys, has_resume = read_keys(self.client, job_id)
        if has_resume == "1" and self.client.get(job_keys[-1]) != job_id:
            job_keys = job_keys[:-1]  # the resume key names a newer job of the same files
        batches = [
            job_keys[start : start + UNLINK_BATCH]
            for start in range(0, len(job_keys), UNLINK_BATCH)
        ]
        # Not a transaction: 25,000 chunks in one MULTI would hold Redis for a quarter second.
        pipe = self.client.pipeline(transaction=False)
        for batch in batches:
            pipe.unlink(*batch)
        pipe.zrem(keys.JOBS, job_id)
        if undo_of:  # the source job may be undone again, by a new undo job
            pipe.hdel(keys.job(undo_of), JobField.UNDONE_BY)
        deleted = pipe.execute()
        return sum(int(n) for n in deleted[: len(batches)])
