"""What a job is doing: state, counts per status, rate and ETA, for people and for scripts."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from producer.errors import JobNotFound
from producer.planning import format_duration
from producer.store import JobStore
from worker.jobs import STATUSES, Job, JobState, Mode
from worker.keys import JobField
from worker.model import RowStatus

if TYPE_CHECKING:
    import redis


# How rows outside a job's goals are called, per mode: the label names the goals, since rows
# that ended not_found were not deleted either, yet reached the goal (the tag is gone).
MISSED_LABEL = {
    Mode.DELETE: "not deleted/not_found",
    Mode.PLAN: "unanswered",
    Mode.UNDO: "not restored/kept_newer/not_found",
}


class Waiting(StrEnum):
    """Why nothing works a job that has not ended."""

    INTERRUPTED = "interrupted"  # it was worked, and no worker is alive now (Ctrl-C, killed)
    NO_WORKER = "no_worker"  # queued, and no worker is alive to take it


@dataclass(frozen=True)
class JobStatus:
    job: Job
    counts: dict[str, int]
    now_ms: int
    # Workers alive now (heartbeats, ``keys.WORKERS``); None: not known (not read).
    live_workers: int | None = None

    @property
    def waiting(self) -> Waiting | None:
        """Why nothing works the job now, if that is so (None once it has ended)."""
        if self.job.state.finished or self.live_workers != 0:
            return None
        return Waiting.NO_WORKER if self.job.state is JobState.QUEUED else Waiting.INTERRUPTED

    @property
    def shown_state(self) -> str:
        """The state as said to people: ``interrupted`` for a running job nothing works."""
        if self.waiting is Waiting.INTERRUPTED:
            return Waiting.INTERRUPTED.value
        return self.job.state.value

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def over(self) -> bool:
        """The job has ended and every row's result is counted."""
        return self.job.state.finished and self.done >= self.job.total

    @property
    def missed(self) -> int:
        """Final rows outside the job's goals (for a delete: any status but deleted or
        not_found; value_differs counts, the tag is still there)."""
        goals = self.job.options.goals
        return sum(n for name, n in self.counts.items() if name not in goals)

    @property
    def statuses(self) -> tuple[RowStatus, ...]:
        """Every status a row of this kind of job can end in."""
        return STATUSES[self.job.options.mode]

    @property
    def missed_label(self) -> str:
        return MISSED_LABEL[self.job.options.mode]

    @property
    def eta_text(self) -> str:
        return "-" if self.eta_s is None else format_duration(self.eta_s)

    @property
    def elapsed_s(self) -> float:
        """Time the rows were worked in this pass (``Job.active_ms``: idle time, such as an
        interrupted run's, is left out); before the first result is recorded, from the start
        of work to now or the end. 0 before work started."""
        held = not self.job.state.finished and self.waiting is None
        return self.job.worked_s(self.now_ms, held=held) or 0.0

    @property
    def rate_rows_per_s(self) -> float:
        """Rows worked per second since work (last) started: invalid and cancelled rows, and
        rows worked before a retry or resume, are not counted."""
        worked = worked_rows(self.counts) - self.job.worked_before
        return max(0, worked) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left: at the rows finished per second so far, or, once the cloud named its
        limit, at least the time that limit needs for the rest (over a window of minutes the
        first window's quota goes fast, then the job waits: the early rate promises too much).
        None once the job is over, while no worker works it, or before a rate."""
        if self.job.state.finished or self.waiting is not None:
            return None
        left = self.job.total - self.done
        rate = self.rate_rows_per_s
        observed = left / rate if rate > 0 else None
        limit = self.job.cloud_limit
        if limit is None:
            return observed
        at_limit = left * self.calls_per_row / limit.rate_per_s
        return max(observed or 0.0, at_limit)

    @property
    def calls_per_row(self) -> float:
        """Calls a row costs: requests per row so far (tags of an image share one request),
        twice for jobs that read before they change (--backup, undo)."""
        worked = self.done - self.counts.get(RowStatus.INVALID.value, 0)
        per_row = min(1.0, self.job.requests / worked) if worked and self.job.requests else 1.0
        options = self.job.options
        return per_row * (2 if options.reads_first and options.mode is not Mode.PLAN else 1)

    def as_json(self) -> dict[str, object]:
        return {
            "job_id": self.job.job_id,
            "state": self.job.state.value,
            "kind": self.job.options.describe(),
            "reason": self.job.reason or None,
            "waiting": None if self.waiting is None else self.waiting.value,
            "live_workers": self.live_workers,
            "total": self.job.total,
            "done": self.done,
            "counts": {s.value: self.counts.get(s.value, 0) for s in self.statuses},
            "rate_rows_per_s": round(self.rate_rows_per_s, 2),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
            "elapsed_s": round(self.elapsed_s, 1),
            "rate_limit_per_s": self.job.options.rate_per_s,
            "effective_rate_per_s": self.job.effective_rate_per_s,
            "cloud_limit": None
            if self.job.cloud_limit is None
            else {
                "count": self.job.cloud_limit.count,
                "window_s": self.job.cloud_limit.window_s,
                "rate_per_s": round(self.job.cloud_limit.rate_per_s, 3),
            },
        }


def worked_rows(counts: Mapping[str, int]) -> int:
    """Rows a worker actually finished: every final row but invalid (never sent) and cancelled
    (stopped before being sent)."""
    unsent = counts.get(RowStatus.INVALID.value, 0) + counts.get(RowStatus.CANCELLED.value, 0)
    return sum(counts.values()) - unsent


def latest_job_id(client: redis.Redis) -> str:
    newest = JobStore(client).latest_job_id()
    if newest is None:
        raise JobNotFound("no job in this Redis yet")
    return newest


def read_job(client: redis.Redis, job_id: str) -> Job:
    store = JobStore(client)
    record = store.read_record(job_id)
    if not record.get(JobField.STATE):  # none, or a record no submission finished
        raise JobNotFound(f"no job {job_id!r} in this Redis")
    store.upgrade_job(job_id, record)  # a job written by an earlier version, once
    return Job.from_record(job_id, record)


def read_status(client: redis.Redis, job_id: str) -> JobStatus:
    """The job's record and counts, and the live workers (readable even when Redis is full:
    ``JobStore``)."""
    record, counts, now_ms, workers = JobStore(client).read_status_parts(job_id)
    if not record.get(JobField.STATE):
        raise JobNotFound(f"no job {job_id!r} in this Redis")
    return JobStatus(Job.from_record(job_id, record), counts, now_ms, live_workers=workers)


def read_status_patiently(
    client: redis.Redis, job_id: str, *, retry_s: float = 1.0, give_up_s: float = 600.0
) -> JobStatus:
    """``read_status`` that waits out a Redis restart (say so on stderr) instead of failing."""
    import redis

    deadline = time.monotonic() + give_up_s
    while True:
        try:
            return read_status(client, job_id)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
            if time.monotonic() > deadline:
                raise
            print(f"Redis unreachable ({exc}); retrying", file=sys.stderr, flush=True)
            time.sleep(retry_s)


# What the state line adds when nothing works a job.
WAITING_TEXT = {
    Waiting.INTERRUPTED: "no live worker: run the same command again, or start a worker",
    Waiting.NO_WORKER: "no live worker: start `tagsweep worker` with this REDIS_URL",
}


def progress_text(status: JobStatus) -> str:
    """Rows final out of the total, cancelled ones apart: a cancelled job shows how far it
    got, not 100% once its unsent rows are marked."""
    job = status.job
    cancelled = status.counts.get(RowStatus.CANCELLED.value, 0)
    final = status.done - cancelled
    share = final / job.total if job.total else 1.0
    text = f"{final:,} / {job.total:,} rows ({share:.1%})"
    return text + (f", {cancelled:,} cancelled" if cancelled else "")


def render_status(status: JobStatus) -> str:
    job = status.job
    eta = "-" if status.eta_s is None else format_duration(status.eta_s)
    why = job.reason or (WAITING_TEXT[status.waiting] if status.waiting else "")
    lines = [
        f"job         {job.job_id}: {job.options.describe()}",
        f"state       {status.shown_state}" + (f" ({why})" if why else ""),
        f"progress    {progress_text(status)}",
        f"rate        {status.rate_rows_per_s:,.1f} rows/s (limit {job.options.rate_per_s:g}"
        f" requests/s, effective {job.effective_rate_per_s or job.options.rate_per_s:g})",
        f"elapsed     {format_duration(status.elapsed_s)}"
        + ("" if job.state.finished or status.waiting else f", ETA {eta}"),
    ]
    if job.cloud_limit is not None:
        limit = job.cloud_limit
        lines.insert(
            4,
            f"cloud limit {limit} ({limit.rate_per_s:,.3g} requests/s), learnt from its 429s;"
            " the ETA counts with it",
        )
    lines += [f"  {name:<14}{count:,}" for name, count in sorted(status.counts.items())]
    return "\n".join(lines)


def progress_line(status: JobStatus) -> str:
    """One line for a log or a non-terminal watcher."""
    eta = "" if status.job.state.finished or status.waiting else f"ETA {status.eta_text}, "
    return (
        f"{status.shown_state}: {status.done:,}/{status.job.total:,} rows, "
        f"{status.rate_rows_per_s:,.1f} rows/s, {eta}{status.missed:,} {status.missed_label}"
    )
