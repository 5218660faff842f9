"""One line per input row: its columns, then what happened to it.

Rows come chunk by chunk (grouped by image, in the order images first appeared), then the
rows refused by validation; memory stays bounded by one chunk.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

from producer.store import JobStore
from worker.jobs import Job, Mode, RowResult

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
# What a job that reads first adds after its status: the value its read found for the key.
BACKUP_COLUMNS = ["previous_value", "was_present"]
CURRENT_COLUMNS = ["current_value"]


def report_columns(job: Job) -> list[str]:
    """The columns of a job's report: input, status, then what its reads found, then the rest."""
    return INPUT_COLUMNS + RESULT_COLUMNS[:1] + _read_columns(job) + RESULT_COLUMNS[1:]


def _read_columns(job: Job) -> list[str]:
    if job.options.mode is not Mode.DELETE:
        return CURRENT_COLUMNS
    return BACKUP_COLUMNS if job.options.backup else []


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _row(columns: list[str], result: RowResult | None) -> dict[str, object]:
    row: dict[str, object] = dict(zip(INPUT_COLUMNS, columns, strict=True))
    if result is None:
        row.update(dict.fromkeys(RESULT_COLUMNS, None), status=PENDING)
        return row
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


def _add_observed(row: dict[str, object], columns: list[str], observed: str | None) -> None:
    """Fill the read columns: for a backup, previous_value and was_present (empty while the
    image was not read: it was not found, or the row never got that far)."""
    if columns is BACKUP_COLUMNS:
        row["previous_value"] = json.loads(observed) if observed is not None else None
        row["was_present"] = None if observed is None else observed != "null"
    elif columns is CURRENT_COLUMNS:
        row["current_value"] = json.loads(observed) if observed is not None else None


def _csv_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def iter_report(client: redis.Redis, job: Job) -> Iterator[dict[str, object]]:
    """Every input row of the job with its result (``pending`` while it has none)."""
    read_columns = _read_columns(job)
    store = JobStore(client)
    for number, batches in store.numbered_chunks(job.job_id, job.chunks):
        rows: list[tuple[int, int, list[str]]] = []
        for batch in batches:
            for tag in batch.tags:
                columns = [batch.image_id, tag.key, tag.value, batch.project_id, batch.region]
                rows.extend((ref, tag.refs[0], columns) for ref in tag.refs)
        results = store.chunk_results(job.job_id, number)
        observed: list[str | None] = [None] * len(rows)
        if read_columns:
            observed = store.observed_values(job.job_id, number, [r[1] for r in rows])
        for (ref, _, columns), seen in zip(rows, observed, strict=True):
            row = _row(columns, results.get(ref))
            _add_observed(row, read_columns, seen)
            yield row
    for _, columns, result in store.invalid_rows(job.job_id):
        row = _row(columns, result)
        _add_observed(row, read_columns, None)
        yield row


def write_report(
    rows: Iterator[dict[str, object]],
    out: IO[str],
    *,
    fmt: str,
    only: set[str] | None,
    columns: list[str] = COLUMNS,
) -> int:
    """Write rows as CSV or JSON lines; return how many were written. In CSV, a boolean is
    ``true``/``false`` and a missing value an empty field; JSON keeps true/false/null."""
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    written = 0
    for row in rows:
        if only and row["status"] not in only:
            continue
        if writer is not None:
            writer.writerow({k: _csv_text(v) for k, v in row.items()})
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
    return written


def write_job_report(
    client: redis.Redis, job: Job, out: IO[str], *, fmt: str = "csv", only: set[str] | None = None
) -> int:
    """The job's report with its own columns; returns how many rows were written."""
    return write_report(
        iter_report(client, job), out, fmt=fmt, only=only, columns=report_columns(job)
    )
