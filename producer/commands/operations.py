"""The commands that run for as long as tagsweep is operated: worker, exporter."""

from __future__ import annotations

import os
import sys

import click

from producer.connection import job_redis
from producer.errors import ConfigError
from producer.redis_check import allow_eviction_option, check_redis
from worker.cloud.credentials import load_credentials
from worker.settings import Settings


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "-c",
    "--concurrency",
    type=int,
    default=2,
    show_default=True,
    help="Worker processes (each with many calls in flight).",
)
@click.option(
    "--loglevel",
    envvar="TAGSWEEP_LOG_LEVEL",
    default="INFO",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="debug adds a line per request that succeeded [env TAGSWEEP_LOG_LEVEL].",
)
@allow_eviction_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED, metavar="[CELERY_ARGS]...")
def worker(
    concurrency: int, loglevel: str, allow_eviction: bool, celery_args: tuple[str, ...]
) -> None:
    """Start a Celery worker with tagsweep's settings (`celery -A worker worker` works too,
    without the check that Redis does not evict)."""
    from worker.app import app, setup_worker_logging

    load_credentials(os.environ)  # none: one line, exit 2, before Celery starts
    setup_worker_logging()  # now, so that even start-up warnings are JSON lines
    check_redis(Settings.from_env().redis_url, allow_eviction=allow_eviction, log=True)
    # --quiet: no start-up banner, so stdout stays one JSON object a line.
    argv = ["--quiet", "worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    if not any(arg in ("-n", "--hostname") or arg.startswith("--hostname=") for arg in celery_args):
        # Celery's default, celery@HOST, is the same for every worker of a host.
        argv.append(f"--hostname=tagsweep-{os.getpid()}@%h")
    app.worker_main(argv=[*argv, *celery_args])


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
    leases, live workers. The same port serves the job page (read-only): / lists the jobs,
    /jobs/JOB shows one."""
    import signal
    import time

    from prometheus_client import CollectorRegistry, make_wsgi_app

    from producer.exporter import TagsweepCollector
    from producer.page.app import PageApp, serve

    # SIGTERM (docker stop, systemd) ends it like Ctrl-C: a private Redis it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with job_redis() as client:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TagsweepCollector(client))
        try:
            app = PageApp(client, make_wsgi_app(registry))
            server, thread = serve(app, host, port)
        except OSError as exc:  # port taken, unknown host
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        click.echo(f"exporter listening on http://{host}:{server.server_port}/metrics", err=True)
        click.echo(f"job page on http://{host}:{server.server_port}/", err=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            click.echo(
                f"the job page and metrics are readable by anyone who reaches {host}"
                " (no login): job ids, image ids, error messages",
                err=True,
            )
        try:
            while thread.is_alive():
                time.sleep(1)
        except KeyboardInterrupt:
            server.shutdown()
