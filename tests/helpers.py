"""Small builders the tests share."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from pathlib import Path

import redis

from worker import keys
from worker.formats import decode_results


def new_image_id() -> str:
    return str(uuid.uuid4())


def write_csv(path: Path, rows: Iterable[dict[str, str]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def recorded_rows(client: redis.Redis, job_id: str) -> list[int]:
    """Every row named in the job's results lists, once per time it was recorded (for a job
    never retried: one entry per row with a result)."""
    chunks = int(client.hget(keys.job(job_id), "next_chunk") or 0)
    refs: list[int] = []
    for number in range(chunks):
        for entry in client.lrange(keys.chunk_results(job_id, number), 0, -1):
            refs += decode_results(entry)[0]
    return refs
