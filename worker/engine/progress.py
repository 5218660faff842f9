"""``job.progress``: what each worker process did for a job, every 10 s and when it lets go.

A request that succeeded is logged at ``debug`` (a 10M-row job must not write gigabytes of
"204, fine"), so at the default level this line is how a job is followed: the job's rows done
(read back from the result script, all workers together), what this process did since its
last line (rows by status, requests, calls, 429s, retries, latency p50/p95) and the effective
rate. It is written from the recording path, never by a timer task: a process that does no
work for a job writes nothing for it.

The lines add up (DESIGN: Logs): the counts are what this process's flushes wrote to Redis
(the rows each flush made final, by status, as the result script answers; the requests and
calls it counted), not what it meant to write, and a process writes its last interval when it
lets go of the job (its chunk ends, or the process shuts down). Summed over every process's
lines, they are the job's counts; a worker killed outright loses at most its last interval.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from worker.store import CallTally, Recorded

log = structlog.get_logger("tagsweep.worker")

PROGRESS_EVERY_S = 10.0


@dataclass
class _Window:
    """What one process recorded for one job since its last progress line."""

    started_at: float
    done_at_start: int
    done: int = 0  # the job's rows final at the last flush, all workers together
    total: int = 0
    rate: float = 0.0  # the shared rate last seen
    rows: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    calls: int = 0
    throttled: int = 0
    retries: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.rows or self.requests or self.calls or self.throttled or self.retries)


class ProgressLog:
    """Counts a process's recorded work per job and writes ``job.progress`` at most every
    ``every_s``, and once more when the process lets go of the job."""

    def __init__(self, clock: Callable[[], float], *, every_s: float = PROGRESS_EVERY_S) -> None:
        self._clock = clock
        self._every_s = every_s
        self._windows: dict[str, _Window] = {}
        # Latencies of requests answered since the last flush, per job (p50/p95 only).
        self._latencies_ms: dict[str, list[float]] = {}

    def latency(self, job_id: str, latency_ms: float) -> None:
        """A request was answered (its last attempt's latency); counted with the next flush."""
        self._latencies_ms.setdefault(job_id, []).append(latency_ms)

    def recorded(
        self, job_id: str, recorded: Recorded, *, total: int, requests: int, calls: CallTally
    ) -> None:
        """A flush wrote to Redis: the rows it made final (by status), the ``requests`` it
        counted and the ``calls`` (with their 429s and retries)."""
        window = self._windows.get(job_id)
        if window is None:
            window = self._windows[job_id] = _Window(
                started_at=self._clock(), done_at_start=recorded.done - recorded.added
            )
        # The highest seen: two chunks of a job in one process (``run``'s lane) may see
        # their flushes answered out of order.
        window.done, window.total = max(window.done, recorded.done), total
        window.rows.update(recorded.gained)
        window.requests += requests
        window.calls += calls.calls
        window.throttled += calls.throttled
        window.retries += calls.retries
        window.latencies_ms += self._latencies_ms.pop(job_id, [])

    def maybe_log(self, job_id: str, *, rate: float) -> None:
        """Write the job's line if ``every_s`` passed since its window opened."""
        window = self._windows.get(job_id)
        if window is None:
            return
        window.rate = rate
        if not window.empty and self._clock() - window.started_at >= self._every_s:
            self._write(job_id, window)

    def let_go(self, job_id: str) -> None:
        """The process lets go of the job (its chunk ended): write what it recorded since its
        last line, if anything, so that no interval goes unsaid."""
        window = self._windows.pop(job_id, None)
        self._latencies_ms.pop(job_id, None)
        if window is not None and not window.empty:
            self._write(job_id, window)

    def close(self) -> None:
        """The process shuts down: let go of every job."""
        for job_id in list(self._windows):
            self.let_go(job_id)

    def _write(self, job_id: str, window: _Window) -> None:
        """Log the window and open the next one where it ends."""
        now = self._clock()
        elapsed_s = now - window.started_at
        worked = window.done - window.done_at_start
        rows_per_s = worked / elapsed_s if elapsed_s > 0 else 0.0
        left = window.total - window.done
        eta_s = round(left / rows_per_s) if rows_per_s > 0 and left > 0 else None
        log.info(
            "job.progress",
            job_id=job_id,
            done=window.done,
            total=window.total,
            rows=dict(window.rows),
            requests=window.requests,
            calls=window.calls,
            throttled=window.throttled,
            retries=window.retries,
            rate=round(window.rate, 2),
            rows_per_s=round(rows_per_s, 1),
            eta_s=eta_s,
            latency_ms_p50=_quantile(window.latencies_ms, 50),
            latency_ms_p95=_quantile(window.latencies_ms, 95),
            interval_s=round(elapsed_s, 1),
        )
        self._windows[job_id] = _Window(
            started_at=now,
            done_at_start=window.done,
            done=window.done,
            total=window.total,
            rate=window.rate,
        )


def _quantile(values: list[float], percent: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)
