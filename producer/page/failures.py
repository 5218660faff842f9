"""The rows of a job that did not end well, grouped by status and error, the first of each.

Workers keep results per request in a list per chunk, not per status, and name in the job's
failure index (``keys.failed_chunks``) each chunk that got a row outside the job's goals. A
read-only script (``worker.lua.scan``, 10 chunks a call) reads those chunks' lists and returns
the rows still outside the goals, counted by group, and the first entries of each group (a
row's last result wins, and only while its final bit is set); only the chunks of rows shown
are decoded, for their image ids. A job recorded before the index existed has none: when the
chunks it names hold fewer rows than the counts say, the other chunks are read the same way.
What a job that has ended gave is kept in memory: it no longer changes, and the page refreshes
itself. Measured (``python -m bench.page``, 500,000 rows, 100 failed requests spread over the
job): decoding every chunk in Python took 6.6 s; a script telling which chunks to read, then
decoding those whole, 0.2-0.35 s; the index and this script, 30-45 ms (a job without the
index: 0.14-0.2 s).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from producer.page.views import JobSummary
from producer.status import JobStatus
from producer.store import JobStore
from producer.store.page import FailedEntries
from worker.jobs import RowResult

# Chunks whose results are read a script call.
CHUNKS_A_READ = 10
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
    """As ``worker.lua.scan.FAILED_ENTRIES`` groups rows."""
    error = result.error_code or (str(result.http_status) if result.http_status else "")
    return result.status.value, error


class _Groups:
    """Groups being filled: each row counted, the first ``SHOWN_ROWS`` kept."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self.groups: dict[tuple[str, str], FailureGroup] = {}
        self._where: dict[int, dict[int, tuple[str, str, str]]] = {}  # chunk: ref: where

    def group(self, key: tuple[str, str], message: str | None) -> FailureGroup:
        return self.groups.setdefault(key, FailureGroup(*key, message or ""))

    def add(self, result: RowResult, where: tuple[str, str, str] | None) -> None:
        group = self.group(group_key(result), result.error_message)
        group.count += 1
        if where is not None and len(group.rows) < SHOWN_ROWS:
            group.rows.append(FailedRow(*where, result))

    def add_found(self, found: list[FailedEntries]) -> int:
        """Add the groups a script call found; return the rows they count."""
        for part in found:
            message = part.entries[0][2].error_message if part.entries else None
            group = self.group((part.status, part.error_code), message)
            group.count += part.rows
            for number, refs, result in part.entries:
                for ref in refs[: SHOWN_ROWS - len(group.rows)]:
                    where = self.where(number, ref)  # None: the chunk expired meanwhile
                    if where is not None:
                        group.rows.append(FailedRow(*where, result))
        return sum(part.rows for part in found)

    def where(self, number: int, ref: int) -> tuple[str, str, str] | None:
        """(image, key, project) of row ``ref`` of chunk ``number`` (the chunk decoded once)."""
        if number not in self._where:
            batches = self.store.chunk_batches(self.job_id, number) or ()
            self._where[number] = {
                row: (batch.image_id, tag.key, batch.project_id)
                for batch in batches
                for tag in batch.tags
                for row in tag.refs
            }
        return self._where[number].get(ref)


def _read(groups: _Groups, status: JobStatus, numbers: list[int], left: int) -> int:
    """Add the rows outside the job's goals of chunks ``numbers``, until ``left`` are found;
    return how many were."""
    wished = {goal.value for goal in status.job.options.goals}
    added = 0
    for first in range(0, len(numbers), CHUNKS_A_READ):
        if added >= left:
            break
        part = numbers[first : first + CHUNKS_A_READ]
        added += groups.add_found(
            groups.store.failed_entries(status.job.job_id, part, wished, SHOWN_ROWS)
        )
    return added


def find_failures(store: JobStore, status: JobStatus) -> list[FailureGroup]:
    """The job's rows outside its goals, grouped, largest group first."""
    job, goals = status.job, status.job.options.goals
    left = status.missed
    groups = _Groups(store, job.job_id)
    for _, columns, result in store.invalid_rows(job.job_id) if left else ():
        if result is not None and result.status not in goals:
            groups.add(result, (columns[0], columns[1], columns[3]))
            left -= 1
    indexed = store.failed_chunks(job.job_id) if left > 0 else []
    left -= _read(groups, status, indexed, left)
    if left > 0:  # rows the index does not name: a job recorded before it existed
        named = set(indexed)
        _read(groups, status, [n for n in range(job.chunks) if n not in named], left)
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
