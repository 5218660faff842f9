"""``tagsweep jobs``: the jobs a Redis holds, newest first, one line each.

Jobs are found through the index that submission has written since the first version
(``keys.JOBS``), so no SCAN of a shared Redis is needed; an index entry whose record is gone is
a job that expired (or was forgotten) and is not listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from producer.retention import backup_note, iso_ms
from producer.status import MISSED_LABEL
from producer.store import JobStore
from worker.jobs import Job, Mode
from worker.keys import JobField

if TYPE_CHECKING:
    import redis

# How rows inside a job's goals are called, per mode (MISSED_LABEL names the others).
GOAL_LABEL = {
    Mode.DELETE: "deleted/not_found",
    Mode.PLAN: "answered",
    Mode.UNDO: "restored/kept_newer/not_found",
}


@dataclass(frozen=True)
class JobLine:
    """One job as ``jobs`` shows it."""

    job: Job
    counts: dict[str, int]
    expires_at_ms: int | None
    backup_note: str | None

    @property
    def kind(self) -> str:
        options = self.job.options
        if options.mode is not Mode.DELETE:
            return options.mode.value
        return "delete with backup" if options.backup else "delete"

    @property
    def goal_rows(self) -> int:
        return sum(n for status, n in self.counts.items() if status in self.job.options.goals)

    @property
    def missed_rows(self) -> int:
        return sum(self.counts.values()) - self.goal_rows

    @property
    def outcome(self) -> str:
        mode = self.job.options.mode
        return f"{self.goal_rows:,} {GOAL_LABEL[mode]}, {self.missed_rows:,} {MISSED_LABEL[mode]}"

    def as_json(self) -> dict[str, object]:
        job = self.job
        return {
            "job_id": job.job_id,
            "kind": self.kind,
            "state": job.state.value,
            "reason": job.reason or None,
            "rows": job.total,
            "done": sum(self.counts.values()),
            "goal_rows": self.goal_rows,
            "missed_rows": self.missed_rows,
            "counts": self.counts,
            "created_at": _iso(job.created_at_ms),
            "finished_at": _iso(job.finished_at_ms),
            "expires_at": _iso(self.expires_at_ms),
            "backup_expires_at": _iso(self.expires_at_ms) if self.backup_note else None,
            "files": list(job.files),
        }


def _iso(ms: int | None, *, human: bool = False) -> str | None:
    return iso_ms(ms, human=human) if ms else None


def iter_jobs(client: redis.Redis, *, state: str | None = None) -> Iterator[JobLine]:
    """The jobs of this Redis, newest first (``state``: only those in it)."""
    store = JobStore(client)
    for ids in store.job_ids(newest_first=True):
        for job_id, record, counts in store.records_and_counts(ids):
            if not record.get(JobField.STATE) or (state and record[JobField.STATE] != state):
                continue
            expires = record.get(JobField.EXPIRES_AT)
            yield JobLine(
                Job.from_record(job_id, record),
                counts,
                int(expires) if expires else None,
                backup_note(record),
            )


HEADER = ("JOB", "KIND", "STATE", "ROWS", "OUTCOME", "CREATED", "FINISHED", "EXPIRES", "FILES")


def render_jobs(lines: list[JobLine], *, state: str | None = None) -> str:
    """A table, one job a line; a job whose backup can still be undone gets a second line."""
    if not lines:
        return f"no {state} jobs in this Redis" if state else "no jobs in this Redis"
    table = [HEADER]
    notes: dict[int, str] = {}
    for line in lines:
        job = line.job
        table.append(
            (
                job.job_id,
                line.kind,
                job.state.value,
                f"{job.total:,}",
                line.outcome,
                _iso(job.created_at_ms, human=True) or "-",
                _iso(job.finished_at_ms, human=True) or "-",
                _iso(line.expires_at_ms, human=True) or ("never" if job.state.finished else "-"),
                ", ".join(job.files),
            )
        )
        if line.backup_note:
            notes[len(table) - 1] = line.backup_note
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER) - 1)]
    out = []
    for number, row in enumerate(table):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.append("  ".join([*cells, row[-1]]).rstrip())
        if number in notes:
            out.append(f"  {notes[number]}: tagsweep undo {row[0]}")
    return "\n".join(out)
