"""A chunk's results on their way to Redis: buffered, then written in one script call.

A script call per request was a third of a worker's Redis round trips; the recorder holds a
chunk's results and flushes them together every ``max_age_s`` or ``max_requests`` requests,
and the chunk flushes what is left before its lease is released. What a flush would have
written is lost only if the worker dies first: those rows are not final (their bits are clear),
so the chunk's next delivery works them again (a delete is idempotent) and records them once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from worker.engine.background import finish_anyway
from worker.jobs import Job, RowResult
from worker.store import CallTally, Entry, Recorded, ResultStore

# Flush at least this often while results come in (a few tens of milliseconds) ...
FLUSH_AGE_S = 0.05
# ... or once this many requests (or entries: rows cancelled unsent count none) are waiting.
FLUSH_REQUESTS = 50


class Recorder:
    """Results of one chunk not yet written; ``flush`` writes them in one call."""

    def __init__(
        self,
        store: ResultStore,
        job: Job,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = FLUSH_AGE_S,
        max_requests: int = FLUSH_REQUESTS,
    ) -> None:
        self.store = store
        self.job = job
        self._clock = clock
        self._max_age_s = max_age_s
        self._max_requests = max_requests
        self._entries: list[Entry] = []
        self._requests = 0
        self._failed = 0
        self._oldest = 0.0

    def add(
        self,
        chunk: int,
        rows: Iterable[tuple[int, RowResult]],
        *,
        request: bool = False,
        failed: bool = False,
    ) -> None:
        """Hold rows' results (one entry per distinct result) and count their request."""
        if not self._entries and not self._requests:
            self._oldest = self._clock()
        grouped: dict[RowResult, list[int]] = {}
        for ref, result in rows:
            grouped.setdefault(result, []).append(ref)
        self._entries += [Entry(chunk, tuple(refs), result) for result, refs in grouped.items()]
        self._requests += int(request)
        self._failed += int(failed)

    @property
    def requests(self) -> tuple[int, int]:
        """Requests held (not counted in Redis yet): (all, failed)."""
        return self._requests, self._failed

    @property
    def pending(self) -> bool:
        return bool(self._entries or self._requests)

    def due(self) -> bool:
        """Whether the buffer is old enough or full enough to be written now."""
        return self.pending and (
            max(self._requests, len(self._entries)) >= self._max_requests
            or self._clock() - self._oldest >= self._max_age_s
        )

    async def flush(self, *, calls: CallTally | None = None, worked_ms: int = 0) -> Recorded | None:
        """Write what is held and count ``calls`` and ``worked_ms`` (the job's active time;
        None if there was nothing to write). Shielded: a cancelled chunk still writes what it
        learnt (STYLE: errors), and a failure then is logged once (``finish_anyway``)."""
        counted = calls is not None and (calls.calls or calls.throttled or calls.retries)
        if not self.pending and not counted:
            return None
        entries, requests, failed = self._entries, self._requests, self._failed
        self._entries, self._requests, self._failed = [], 0, 0
        return await finish_anyway(
            self.store.record_entries(
                self.job.job_id,
                entries,
                requests=requests,
                failed=failed,
                goals=self.job.options.goals,
                calls=calls,
                worked_ms=worked_ms,
            ),
            what="results",
        )
