"""The commands for running tagsweep over months: jobs, forget, exporter."""

from __future__ import annotations

import json
import sys

import click

from producer.connection import job_redis
from producer.jobs_list import iter_jobs, render_jobs
from producer.jobspec import EXIT_DECLINED, interactive
from producer.retention import forget_job, pending_backup
from worker.errors import ConfigError
from worker.jobs import JobState


@click.command(short_help="List the jobs in this Redis, newest first.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in JobState]),
    help="Only the jobs in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def jobs(state: str | None, as_json: bool) -> None:
    """The jobs in this Redis, newest first: kind, state, rows and outcome, times, files."""
    with job_redis() as client:
        lines = list(iter_jobs(client, state=state))
    if as_json:
        click.echo(json.dumps([line.as_json() for line in lines], indent=2))
    else:
        click.echo(render_jobs(lines, state=state))


@click.command(short_help="Delete a finished job's data now.")
@click.argument("job_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask, even for a job holding a backup.")
def forget(job_id: str, yes: bool) -> None:
    """Delete a finished job's data (results, chunks, backup) from Redis now.

    Refused for a queued or running job. On a terminal, asks first when the job holds a backup
    that was not undone (the tags could then no longer be put back).
    """
    with job_redis() as client:
        expires = pending_backup(client, job_id)
        question = (
            f"job {job_id} holds a backup not undone (kept until {expires}); forget it and the "
            "tags can no longer be put back?"
        )
        if expires and not yes and interactive() and not click.confirm(question, err=True):
            click.echo("tagsweep: nothing deleted", err=True)
            raise SystemExit(EXIT_DECLINED)
        deleted = forget_job(client, job_id)
    click.echo(f"job {job_id} forgotten ({deleted:,} keys deleted)")


@click.command(short_help="Serve Prometheus metrics read from Redis.")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0: every interface.")
@click.option(
    "--port",
    default=9808,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
def exporter(host: str, port: int) -> None:
    """Serve Prometheus metrics on /metrics, read from Redis at each scrape (one exporter for
    every worker): rows by status, requests, 429s, retries, rates, ETA, states, queue,
    leases, live workers."""
    import signal
    import time

    from prometheus_client import CollectorRegistry, start_http_server

    from producer.exporter import TagsweepCollector

    # SIGTERM (docker stop, systemd) ends it like Ctrl-C: a private Redis it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with job_redis() as client:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TagsweepCollector(client))
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:  # port taken, unknown host
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        click.echo(f"exporter listening on http://{host}:{server.server_port}/metrics", err=True)
        try:
            while thread.is_alive():
                time.sleep(1)
        except KeyboardInterrupt:
            server.shutdown()
