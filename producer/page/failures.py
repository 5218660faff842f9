"""The rows of a job that did not end well, grouped by status and error, the first of each.

Workers keep results per request in a list per chunk, not per status, so finding them means
reading the chunks' results. A read-only script tells which chunks hold an entry of such a
status (``worker.lua.scan``, 50 chunks a call); only those are read and decoded, as ``report``
reads them (a row's last result wins, and only while its final bit is set). The reading
stops once every such row is found (the counts say how many), and what a job that has ended
gave is kept in memory: it no longer changes, and the page refreshes itself. Measured
(``python -m bench.page``, 500,000 rows, 100 failed requests spread over the job): decoding
every chunk in Python took 6.6 s, skipping chunks after reading them 2.3 s, the script
0.6 s (half of it decoding chunks for rows no group had room for: no longer done).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from producer.page.views import JobSummary
from producer.status import JobStatus
from producer.store import JobStore
from worker.formats import latest_results
from worker.jobs import RowResult

# Chunks whose results are read a round trip.
CHUNKS_A_READ = 50
# Rows shown per group.
SHOWN_ROWS = 20
# Jobs whose groups are kept in memory.
KEPT_JOBS = 32


@dataclass(frozen=True)
class FailedRow:
    """One row that did not end well: where it was, and its result."""

    image_id: str
    key: str
    project_id: str
    result: RowResult


@dataclass
class FailureGroup:
    """Rows of one status and one error: how many, and the first ``SHOWN_ROWS``."""

    status: str
    error_code: str
    error_message: str
    count: int = 0
    rows: list[FailedRow] = field(default_factory=list)


def group_key(result: RowResult) -> tuple[str, str]:
    error = result.error_code or (str(result.http_status) if result.http_status else "")
    return result.status.value, error


class _Groups:
    """Groups being filled: each row counted, the first ``SHOWN_ROWS`` kept."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str], FailureGroup] = {}

    def shown(self, results: Iterable[RowResult]) -> bool:
        """Whether a row of any of these results would be shown (its group has room)."""
        return any(
            key not in self.groups or len(self.groups[key].rows) < SHOWN_ROWS
            for key in map(group_key, results)
        )

    def add(self, result: RowResult, where: tuple[str, str, str] | None) -> None:
        key = group_key(result)
        group = self.groups.setdefault(key, FailureGroup(*key, result.error_message or ""))
        group.count += 1
        if where is not None and len(group.rows) < SHOWN_ROWS:
            group.rows.append(FailedRow(*where, result))


def _add_chunk(groups: _Groups, store: JobStore, status: JobStatus, number: int) -> int:
    """Add the rows of chunk ``number`` outside the job's goals; return how many."""
    job_id, goals = status.job.job_id, status.job.options.goals
    latest = latest_results(store.results_entries(job_id, number))  # a row's last result wins
    found = {ref: result for ref, result in latest.items() if result.status not in goals}
    final = store.final_refs(job_id, list(found))  # not made pending again by a retry
    found = {ref: result for ref, result in found.items() if ref in final}
    if not found:
        return 0
    added = len(found)
    shown = groups.shown(found.values())  # decoding the chunk only names rows to show
    for batch in (store.chunk_batches(job_id, number) or ()) if shown else ():
        for tag in batch.tags:
            for ref in set(tag.refs) & found.keys():
                groups.add(found.pop(ref), (batch.image_id, tag.key, batch.project_id))
    for result in found.values():  # rows the chunk no longer names (it expired meanwhile)
        groups.add(result, None)
    return added


def find_failures(store: JobStore, status: JobStatus) -> list[FailureGroup]:
    """The job's rows outside its goals, grouped, largest group first."""
    job, goals = status.job, status.job.options.goals
    left = status.missed
    wished = {goal.value for goal in goals}
    groups = _Groups()
    for _, columns, result in store.invalid_rows(job.job_id) if left else ():
        if result is not None and result.status not in goals:
            groups.add(result, (columns[0], columns[1], columns[3]))
            left -= 1
    for first in range(0, job.chunks, CHUNKS_A_READ):
        numbers = range(first, min(first + CHUNKS_A_READ, job.chunks))
        for number in store.chunks_with_other_status(job.job_id, numbers, wished):
            if left <= 0:
                break
            left -= _add_chunk(groups, store, status, number)
    return sorted(groups.groups.values(), key=lambda group: -group.count)


class FailureCache:
    """``find_failures``, kept while the job's rows outside its goals are the same.

    Within one pass of a job (``next_chunk`` grows with each retry and resume, the only
    commands that make final rows pending again) a row's result is written once, so the same
    counts of rows outside the goals mean the same rows: a running job is read again only when
    one more row failed."""

    def __init__(self, *, kept_jobs: int = KEPT_JOBS) -> None:
        self._kept_jobs = kept_jobs
        self._groups: OrderedDict[tuple[object, ...], list[FailureGroup]] = OrderedDict()
        self._lock = threading.Lock()  # the server answers each request in a thread

    def failures(self, store: JobStore, summary: JobSummary) -> list[FailureGroup]:
        status = summary.status
        if not status.missed:
            return []
        goals = status.job.options.goals
        missed = sorted((name, n) for name, n in status.counts.items() if name not in goals)
        key = (status.job.job_id, summary.next_chunk, status.job.finished_at_ms, *missed)
        with self._lock:
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key]
        groups = find_failures(store, status)
        with self._lock:
            self._groups[key] = groups
            while len(self._groups) > self._kept_jobs:
                self._groups.popitem(last=False)
        return groups
