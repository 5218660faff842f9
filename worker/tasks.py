"""Celery tasks, kept at the edge: unpack the message, call the async engine."""

from __future__ import annotations

from typing import Any

import structlog

from worker.app import app
from worker.broker import CHUNK_TASK
from worker.runtime import get_runtime

log = structlog.get_logger("tagsweep.worker")


@app.task(name=CHUNK_TASK)  # type: ignore[untyped-decorator]
def process_chunk(job_id: Any, number: Any) -> str:
    """Work one chunk of a job. The message is ``[job_id, chunk number]``, JSON."""
    if not isinstance(job_id, str) or not isinstance(number, int) or isinstance(number, bool):
        log.error(
            "message.rejected", reason="expected [job_id: str, chunk: int]", job=repr(job_id)[:80]
        )
        return "rejected"
    runtime = get_runtime()
    own = runtime.settings.run_job
    if own is not None and job_id != own:
        # A message left by another run on this private Redis (interrupted): that job's own
        # run queues its chunks again; these workers are this run's.
        log.info("chunk.left", job_id=job_id, chunk=number, reason="another run's job")
        return "left"
    return runtime.run(runtime.run_chunk(job_id, number))
