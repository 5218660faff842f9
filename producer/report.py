"""One line per input row: its columns, then what happened to it.

Rows come chunk by chunk (grouped by image, in the order images first appeared), then the
rows refused by validation; memory stays bounded by one chunk.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, cast

from worker import keys
from worker.jobs import Job, RowResult, decode_chunk

if TYPE_CHECKING:
    import redis

INPUT_COLUMNS = ["image_id", "key", "value", "project_id", "region"]
RESULT_COLUMNS = [
    "status",
    "http_status",
    "error_code",
    "error_message",
    "attempts",
    "request_id",
    "finished_at",
]
COLUMNS = INPUT_COLUMNS + RESULT_COLUMNS
PENDING = "pending"


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _row(columns: list[str], raw: str | None) -> dict[str, object]:
    row: dict[str, object] = dict(zip(INPUT_COLUMNS, columns, strict=True))
    if raw is None:
        row.update(dict.fromkeys(RESULT_COLUMNS, None), status=PENDING)
        return row
    result = RowResult.from_json(raw)
    row.update(
        status=result.status.value,
        http_status=result.http_status,
        error_code=result.error_code,
        error_message=result.error_message,
        attempts=result.attempts,
        request_id=result.request_id,
        finished_at=_iso(result.finished_at_ms) if result.finished_at_ms else None,
    )
    return row


def iter_report(client: redis.Redis, job: Job) -> Iterator[dict[str, object]]:
    """Every input row of the job with its result (``pending`` while it has none)."""
    for number in range(job.chunks):
        text = cast(str | None, client.get(keys.chunk(job.job_id, number)))
        if text is None:
            continue
        rows: list[tuple[int, list[str]]] = []
        for batch in decode_chunk(text):
            for tag in batch.tags:
                columns = [batch.image_id, tag.key, tag.value, batch.project_id, batch.region]
                rows.extend((ref, columns) for ref in tag.refs)
        found = cast(
            list[str | None], client.hmget(keys.results(job.job_id), [str(r) for r, _ in rows])
        )
        for (_, columns), raw in zip(rows, found, strict=True):
            yield _row(columns, raw)
    for entry in cast(list[str], client.lrange(keys.invalid_rows(job.job_id), 0, -1)):
        ref, *columns = json.loads(entry)
        yield _row(columns, cast(str | None, client.hget(keys.results(job.job_id), ref)))


def write_report(
    rows: Iterator[dict[str, object]], out: IO[str], *, fmt: str, only: set[str] | None
) -> int:
    """Write rows as CSV or JSON lines; return how many were written."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    written = 0
    for row in rows:
        if only and row["status"] not in only:
            continue
        if writer is not None:
            writer.writerow(row)
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
    return written
