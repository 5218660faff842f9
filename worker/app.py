"""The Celery app as workers run it: the app of worker/broker.py with tagsweep's bootsteps
(reaper, heartbeat) and signals (logging, credentials, the runtime of each pool process)."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import celery.apps.worker as celery_worker_app
from celery import signals

from worker import transport
from worker.broker import QUEUE, app, settings, use_broker
from worker.cloud.credentials import load_credentials
from worker.errors import CredentialsError
from worker.heartbeat import HeartbeatStep
from worker.logs import configure_logging
from worker.reaper import ReaperStep
from worker.settings import redact_url

__all__ = ["QUEUE", "app", "use_broker"]

app.steps["worker"].add(ReaperStep)
app.steps["worker"].add(HeartbeatStep)
transport.use_in_this_process()


def setup_worker_logging(loglevel: int | str | None = None, **_: Any) -> None:
    """Celery's records go through structlog: one JSON object a line on stdout.

    The level is ``TAGSWEEP_LOG_LEVEL`` when set, else Celery's ``--loglevel``, else info.
    """
    fmt = settings.log_format
    level: int | str = settings.log_level
    if "TAGSWEEP_LOG_LEVEL" not in os.environ and loglevel is not None:
        level = loglevel.upper() if isinstance(loglevel, str) else loglevel
    configure_logging(json_output=None if fmt == "auto" else fmt == "json", level=level)
    logging.getLogger("celery.worker.consumer.connection").addFilter(_show_broker_url)
    # Celery prints its shutdown notices ("worker: Warm shutdown (MainProcess)") straight to
    # sys.__stdout__ from its signal handlers; route them through logging so that stdout stays
    # one JSON object a line. (logging's handler lock is re-entrant, so a signal is safe.)
    celery_worker_app.safe_say = _say


def _show_broker_url(record: logging.LogRecord) -> bool:
    """Celery's "Connected to URL" shows ``:**@`` in every URL, a password or not (kombu's
    ``Connection.as_uri`` masks one that is not there); show the URL, masked only if needed."""
    if record.msg == "Connected to %s":
        record.args = (redact_url(str(app.conf.broker_url)),)
    return True


def _say(msg: str, f: Any = None) -> None:
    logging.getLogger("celery.apps.worker").warning(msg)


def _check_credentials(**_: Any) -> None:
    """Refuse to start without credentials, rather than fail every chunk: one error line and
    exit 2 (for ``celery -A worker worker``; ``tagsweep worker`` checks before Celery starts).
    Celery logs and ignores an error a signal handler raises; it lets SystemExit through."""
    try:
        load_credentials(os.environ)
    except CredentialsError as exc:
        logging.getLogger("tagsweep.worker").error("worker.refused: %s", exc)
        raise SystemExit(2) from None


def _init_process(**_: Any) -> None:
    from worker.runtime import get_runtime

    get_runtime()


def _close_process(exitcode: int | None = None, **_: Any) -> None:
    """A pool process ends: close its runtime; when its pool was closed (exit code 0), exit
    at once.

    billiard's pool process otherwise sleeps 1 s after saying it is leaving, for its parent to
    kill it on reading that; a parent that is stopping reads no more, so every warm stop
    waited the whole second (billiard/pool.py, ``Worker._do_exit``). The parent sees the exit
    itself (the process's sentinel), as when a pool process is killed. Any other exit (a
    SIGTERM to the whole group) keeps billiard's way: the parent may not know yet that it is
    stopping, and would start a new pool process in its place.
    """
    from worker.runtime import close_runtime

    close_runtime()
    if exitcode == 0:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


signals.setup_logging.connect(setup_worker_logging)
signals.worker_init.connect(_check_credentials)
signals.worker_process_init.connect(_init_process)
signals.worker_process_shutdown.connect(_close_process)
