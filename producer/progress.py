"""Following a job until it ends: a live bar on a terminal (click), plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import click

from producer.status import JobStatus, progress_line
from producer.status import read_status_patiently as read_status

if TYPE_CHECKING:
    import redis


def _detail(status: JobStatus | None) -> str:
    if status is None:
        return ""
    eta = "" if status.job.state.finished else f"ETA {status.eta_text}  "
    return f"{status.rate_rows_per_s:,.0f} rows/s  {eta}{status.missed_label} {status.missed:,}"


def follow_job(
    client: redis.Redis,
    job_id: str,
    *,
    tty: bool,
    interval_s: float = 1.0,
    plain_every_s: float = 10.0,
    check: Callable[[], None] | None = None,
) -> JobStatus:
    """Show progress until the job ends; ``check`` may raise to stop (e.g. workers died)."""
    current = read_status(client, job_id)
    if not tty:
        last_line = 0.0
        while not current.over:
            if time.monotonic() - last_line >= plain_every_s:
                click.echo(progress_line(current), err=True)
                last_line = time.monotonic()
            time.sleep(interval_s)
            if check:
                check()
            current = read_status(client, job_id)
        click.echo(progress_line(current), err=True)
        return current
    with click.progressbar(
        length=max(current.job.total, 1),
        label=f"job {job_id}",
        show_percent=True,
        show_pos=True,
        # One ETA, ours (from the job's rate): click's own counts from this bar's first update,
        # which after a resume jumps by every row done before, and so disagreed with ours.
        show_eta=False,
        item_show_func=cast(Any, _detail),  # items are JobStatus, passed to update()
        file=sys.stderr,
    ) as progress:
        bar: Any = progress  # click's stubs type a length-only bar's items as object
        shown = 0
        while True:
            bar.update(current.done - shown, current)
            shown = current.done
            if current.over:
                return current
            time.sleep(interval_s)
            if check:
                check()
            current = read_status(client, job_id)
