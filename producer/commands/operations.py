"""The commands that run for as long as tagsweep is operated: worker, exporter."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from producer.connection import job_redis, shared_redis_url
from producer.errors import ConfigError
from producer.exits import ENDING
from producer.redis_check import allow_eviction_option, check_redis
from worker.cloud.credentials import load_credentials


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
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="debug adds a line per request that succeeded [env TAGSWEEP_LOG_LEVEL].",
)
@allow_eviction_option
@click.option(
    "--wait-for-redis",
    "wait_for_redis_s",
    type=click.FloatRange(min=0),
    default=0.0,
    hidden=True,  # for run, which starts its workers while its own Redis starts
    help="Seconds to wait for Redis to answer at start.",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED, metavar="[CELERY_ARGS]...")
def worker(
    concurrency: int,
    loglevel: str,
    allow_eviction: bool,
    wait_for_redis_s: float,
    celery_args: tuple[str, ...],
) -> int:
    """Start a Celery worker with tagsweep's settings (`celery -A worker worker` works too,
    without the check that Redis does not evict).

    Redis: REDIS_URL (default redis://127.0.0.1:6379/0), shared with submit; refused without
    REDIS_URL where ./.tagsweep/ holds a private Redis (`run` starts that one's workers).
    """
    from worker.app import app, setup_worker_logging

    load_credentials(os.environ)  # none: one line, exit 2, before Celery starts
    setup_worker_logging()  # now, so that even start-up warnings are JSON lines
    check_redis(
        shared_redis_url("worker"),
        allow_eviction=allow_eviction,
        log=True,
        wait_s=wait_for_redis_s,
    )
    # Without mingle and gossip: tagsweep's workers share nothing through Celery's
    # worker-to-worker chatter (no revokes; liveness is worker/heartbeat.py), and mingle alone
    # held every start 1 s.
    argv = [f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    argv += ["--without-mingle", "--without-gossip"]
    if not any(arg in ("-n", "--hostname") or arg.startswith("--hostname=") for arg in celery_args):
        # Celery's default, celery@HOST, is the same for every worker of a host.
        argv.append(f"--hostname=tagsweep-{os.getpid()}@%h")
    ENDING.skip_teardown = True  # once stopped, nothing is left to free (exits.ENDING)
    return _celery_worker(app, [*argv, *celery_args])


def _celery_worker(app: Any, argv: list[str]) -> int:
    """Run Celery's ``worker`` command alone; its exit code. (``app.worker_main`` goes through
    the whole ``celery`` command line, whose other commands import click_repl and
    prompt_toolkit: 0.2-0.3 s of every worker's start.)"""
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker as celery_worker

    # quiet: no start-up banner, so stdout stays one JSON object a line.
    context = CLIContext(app=app, no_color=False, workdir=None, quiet=True)
    code = celery_worker.main(
        args=argv, obj=context, prog_name="tagsweep worker", standalone_mode=False
    )
    return int(code or 0)


def _say_listening(host: str, port: int) -> None:
    """Where the metrics and the page are; who can read them when not on loopback."""
    click.echo(f"exporter listening on http://{host}:{port}/metrics", err=True)
    click.echo(f"job page on http://{host}:{port}/", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"the job page and metrics are readable by anyone who reaches {host}"
            " (no login): job ids, image ids, error messages",
            err=True,
        )


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
    /jobs/JOB shows one.

    Redis: REDIS_URL; without it, the private Redis of ./.tagsweep/ when `run` made one
    here, else redis://127.0.0.1:6379/0.
    """
    import signal
    import time

    from prometheus_client import CollectorRegistry, make_wsgi_app

    from producer.exporter import TagsweepCollector
    from producer.page.app import PageApp, serve

    # SIGTERM (docker stop, systemd) ends it like Ctrl-C: a private Redis it started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Redis not answering yet is no reason to refuse to start: the exporter says so with
    # tagsweep_redis_up 0 (what an alert watches) until it answers.
    with job_redis(must_answer=False) as client:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TagsweepCollector(client))
        try:
            app = PageApp(client, make_wsgi_app(registry))
            server, thread = serve(app, host, port)
        except OSError as exc:  # port taken, unknown host
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        _say_listening(host, server.server_port)
        try:
            while thread.is_alive():
                time.sleep(1)
        except KeyboardInterrupt:
            server.shutdown()
