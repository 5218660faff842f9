"""Following a job until it ends: a live bar on a terminal (click), plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
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
    check: Callable[[JobStatus], None] | None = None,
    pause: Callable[[float], object] | None = None,
) -> JobStatus:
    """Show progress until the job ends; ``check`` is given each status read and may raise to
    stop (e.g. workers died); ``pause`` waits between two reads (it may end early: the job's
    end is near).
    With a ``check`` the command runs its own workers, which ``check`` watches: the job is
    not shown as one no worker works while they start (before their first heartbeat).

    Redis is read every 0.1 s at first, then every twentieth of the time followed so far,
    every ``interval_s`` at most: the end of a job is seen 5% of its time late at most (a
    small one's within 0.1 s, where a whole second was up to 40% of it).
    """
    started = time.monotonic()

    def read() -> JobStatus:
        status = read_status(client, job_id)
        if check is None:
            return status
        check(status)  # with the live workers it counts
        return replace(status, live_workers=None)

    def wait() -> JobStatus:
        (pause or time.sleep)(min(interval_s, max(0.1, (time.monotonic() - started) / 20)))
        return read()

    current = read()
    if tty:
        return _follow_bar(current, wait)
    return _follow_plain(current, wait, plain_every_s=plain_every_s)


def _follow_plain(
    current: JobStatus, wait: Callable[[], JobStatus], *, plain_every_s: float
) -> JobStatus:
    """A progress line on stderr every ``plain_every_s``, and one at the end."""
    last_line = 0.0
    while not current.over:
        if time.monotonic() - last_line >= plain_every_s:
            click.echo(progress_line(current), err=True)
            last_line = time.monotonic()
        current = wait()
    click.echo(progress_line(current), err=True)
    return current


def _follow_bar(current: JobStatus, wait: Callable[[], JobStatus]) -> JobStatus:
    """A live bar on stderr, its detail the rate, ETA and rows missed."""
    with click.progressbar(
        length=max(current.job.total, 1),
        label=f"job {current.job.job_id}",
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
            current = wait()


class CountBar:
    """A bar over a known number of items on a terminal (click); otherwise a plain line every
    ``plain_every_s`` while it runs. For work that is not a job, such as select's listing."""

    def __init__(self, *, tty: bool, plain_every_s: float = 10.0) -> None:
        self.tty = tty
        self.plain_every_s = plain_every_s
        self._bar: Any = None
        self._label, self._length, self._done, self._shown_at = "", 0, 0, 0.0

    def start(self, length: int, label: str) -> None:
        """End the current bar, if any, and start one of ``length`` items."""
        self.close()
        self._label, self._length, self._done = label, length, 0
        self._shown_at = time.monotonic()
        if self.tty:
            self._bar = click.progressbar(
                length=max(length, 1), label=label, show_pos=True, file=sys.stderr
            )
            self._bar.__enter__()

    def advance(self, items: int) -> None:
        self._done += items
        if self._bar is not None:
            self._bar.update(items)
        elif not self.tty and time.monotonic() - self._shown_at >= self.plain_every_s:
            click.echo(f"{self._label}: {self._done:,} of {self._length:,}", err=True)
            self._shown_at = time.monotonic()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
