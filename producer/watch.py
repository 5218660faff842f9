"""Following a job until it ends: a live line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time

import click
import redis

from producer.status import JobStatus, progress_line, read_status


def watch_job(client: redis.Redis, job_id: str, *, interval_s: float = 2.0) -> JobStatus:
    """Print progress until the job's state is final (and its rows are all counted)."""
    tty = sys.stderr.isatty()
    while True:
        current = read_status(client, job_id)
        line = progress_line(current)
        if tty:
            click.echo("\r\033[K" + line, nl=False, err=True)
        else:
            click.echo(line, err=True)
        if current.job.state.finished and current.done >= current.job.total:
            if tty:
                click.echo("", err=True)
            return current
        time.sleep(interval_s)
