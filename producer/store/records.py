"""The job record (``keys.job``) and its counts, as the commands write, read and change them."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, cast

from producer.store.part import StorePart, counts_of
from worker import keys
from worker.jobs import JobState
from worker.keys import JobField
from worker.lua.jobs import STOP_JOB

if TYPE_CHECKING:
    from redis.commands.core import Script
    from redis.typing import EncodableT, FieldT


class RecordStore(StorePart):
    """A job's record: written whole at submission, then its state and counters."""

    @cached_property
    def _stop(self) -> Script:
        # The workers' script (worker/lua/jobs.py), registered once per store.
        return self.client.register_script(STOP_JOB)

    def write_record(
        self, job_id: str, fields: Mapping[FieldT, EncodableT], *, created_at_ms: int
    ) -> None:
        """Write a job's record and put it in the index of jobs (``keys.JOBS``)."""
        self.client.hset(keys.job(job_id), mapping=dict(fields))
        self.client.zadd(keys.JOBS, {job_id: created_at_ms})

    def read_record(self, job_id: str) -> dict[str, str]:
        """The job's record ({} for no such job)."""
        return cast(dict[str, str], self.client.hgetall(keys.job(job_id)))

    def read_record_and_counts(self, job_id: str) -> tuple[dict[str, str], dict[str, int]]:
        """The record and the rows final per status, in one round trip."""
        # Not MULTI: Redis refuses a transaction, even of reads, once used memory passes
        # maxmemory, and status must work most of all when Redis is full. The two reads may be
        # a few results apart; the next read catches up.
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.job(job_id))
        pipe.hgetall(keys.counts(job_id))
        record, counts = pipe.execute()
        return record, counts_of(counts)

    def read_status_parts(self, job_id: str) -> tuple[dict[str, str], dict[str, int], int, int]:
        """``read_record_and_counts``, Redis's clock (ms) and the live workers (a heartbeat
        in the last ``keys.WORKER_LIVE_S``), in two round trips."""
        pipe = self.client.pipeline(transaction=False)  # not MULTI: as above
        pipe.hgetall(keys.job(job_id))
        pipe.hgetall(keys.counts(job_id))
        pipe.time()
        record, counts, (seconds, micros) = pipe.execute()
        now_ms = int(seconds * 1000 + micros // 1000)
        since_ms = now_ms - int(keys.WORKER_LIVE_S * 1000)
        workers = int(self.client.zcount(keys.WORKERS, since_ms, "+inf"))
        return record, counts_of(counts), now_ms, workers

    def read_counts(self, job_id: str) -> dict[str, int]:
        """Status -> rows final in it."""
        return counts_of(cast(dict[str, str], self.client.hgetall(keys.counts(job_id))))

    def latest_job_id(self) -> str | None:
        """The job written last (by creation time), if any."""
        newest = cast(list[str], self.client.zrevrange(keys.JOBS, 0, 0))
        return newest[0] if newest else None

    def next_chunk(self, job_id: str) -> int:
        """How many chunks the job has, retry chunks included (0 for no such job)."""
        return int(cast(str | None, self.client.hget(keys.job(job_id), JobField.NEXT_CHUNK)) or 0)

    def add_chunks(self, job_id: str, count: int) -> None:
        """Count ``count`` more chunks written after ``next_chunk``."""
        self.client.hincrby(keys.job(job_id), JobField.NEXT_CHUNK, count)

    def stop_job(self, job_id: str, state: JobState, reason: str) -> bool:
        """Move a queued or running job to ``state`` (aborted, cancelled); False if it was over."""
        return bool(self._stop(keys=[keys.job(job_id)], args=[state.value, reason]))

    def reopen_job(self, job_id: str, *, worked_before: int) -> None:
        """Make a finished job queued again, its end, request counters and ``resend``
        forgotten."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            keys.job(job_id),
            mapping={
                JobField.STATE: JobState.QUEUED.value,
                JobField.REASON: "",
                JobField.WORKED_BEFORE: worked_before,
            },
        )
        pipe.hdel(
            keys.job(job_id),
            JobField.FINISHED_AT,
            JobField.REQUESTS,
            JobField.FAILED_REQUESTS,
            JobField.RESEND,
            JobField.ACTIVE_MS,
            JobField.ACTIVE_AT,
        )
        pipe.execute()

    def set_options(self, job_id: str, options_json: str) -> None:
        """Replace the job's options (``run --simulate``: a new simulator's endpoint)."""
        self.client.hset(keys.job(job_id), JobField.OPTIONS, options_json)

    def mark_undone(self, job_id: str, undo_id: str) -> None:
        """Name the undo job of ``job_id`` in its record."""
        self.client.hset(keys.job(job_id), JobField.UNDONE_BY, undo_id)
