"""The exporter's routes: the job page (``/``, ``/jobs/JOB``, ``/jobs/JOB/report.csv``) beside
prometheus_client's metrics (every other path, as before), and the threaded server for both.

WSGI from the standard library, as prometheus_client's own server is: the page is a few
read-only GETs, which need no web framework. Only GET and HEAD are answered: nothing on the
page changes a job (cancel and forget stay commands).
"""

from __future__ import annotations

import io
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from producer.errors import JobNotFound
from producer.page.failures import FailureCache
from producer.page.html import render_index, render_job
from producer.page.views import read_jobs, read_summary, timeline_points
from producer.report import iter_report, report_columns, write_report
from producer.store import JobStore

if TYPE_CHECKING:
    import redis

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
JOB_PATH = re.compile(r"/jobs/([^/]+)(/report\.csv)?")
# Report rows written per piece of the download (memory stays bounded by one piece).
REPORT_ROWS = 2000
HTML = "text/html; charset=utf-8"


class PageApp:
    """The routes of ``tagsweep exporter``."""

    def __init__(self, client: redis.Redis, metrics: WsgiApp) -> None:
        self.store = JobStore(client)
        self.metrics = metrics
        self.failures = FailureCache()

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        import redis

        path = environ.get("PATH_INFO") or "/"
        job = JOB_PATH.fullmatch(path)
        if path != "/" and job is None:
            return self.metrics(environ, start)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start, "405 Method Not Allowed", "The page is read-only.\n")
        try:
            if job is None:
                return _answer(start, "200 OK", render_index(read_jobs(self.store)), HTML)
            if job[2]:
                return self.report(start, job[1])
            return _answer(start, "200 OK", self.job_page(job[1]), HTML)
        except JobNotFound as exc:
            return _answer(start, "404 Not Found", f"{exc}\n")
        except (redis.RedisError, OSError) as exc:
            return _answer(start, "503 Service Unavailable", f"Redis unreachable: {exc}\n")

    def job_page(self, job_id: str) -> str:
        summary = read_summary(self.store, job_id)
        status = summary.status
        points = timeline_points(self.store.timeline(job_id), status.job, status.now_ms)
        return render_job(summary, points, self.failures.failures(self.store, summary))

    def report(self, start: Callable[..., Any], job_id: str) -> Iterable[bytes]:
        """The report as ``tagsweep report JOB`` writes it, in pieces."""
        job = read_summary(self.store, job_id).status.job
        rows = iter_report(self.store.client, job)
        disposition = f'attachment; filename="tagsweep-{job_id}.csv"'
        start(
            "200 OK",
            [("Content-Type", "text/csv; charset=utf-8"), ("Content-Disposition", disposition)],
        )
        return _report_pieces(rows, report_columns(job))


def _report_pieces(rows: Iterator[dict[str, object]], columns: list[str]) -> Iterator[bytes]:
    """``write_report``'s CSV a piece at a time: each piece is written with its own header,
    which every piece after the first drops (a header is one line: column names only)."""
    for number in itertools.count():
        piece = list(itertools.islice(rows, REPORT_ROWS))
        if number and not piece:
            return
        out = io.StringIO()
        write_report(iter(piece), out, fmt="csv", only=None, columns=columns)
        text = out.getvalue()
        yield (text if number == 0 else text.split("\n", 1)[1]).encode()


def _answer(
    start: Callable[..., Any], status: str, text: str, kind: str = "text/plain; charset=utf-8"
) -> list[bytes]:
    body = text.encode()
    start(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]


class _Server(ThreadingMixIn, WSGIServer):
    """A request per thread (a slow report download does not hold up a scrape)."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (Prometheus scrapes every few seconds)."""


def serve(app: WsgiApp, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``app`` on ``host:port`` from a daemon thread; OSError if it cannot listen."""
    server = make_server(host, port, app, _Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
