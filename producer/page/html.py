"""The two pages, rendered on the server: ``/`` (every job kept) and ``/jobs/JOB`` (one job).

Plain HTML with inline CSS, an inline SVG chart and a few lines of script that fetch the page
again every few seconds and swap its ``<main>`` (no build step, nothing loaded from outside:
the page works where the exporter's network reaches nothing else). Each count carries its
number in a ``data-`` attribute too, for scripts and tests. Values are escaped here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from producer.page.chart import render_chart
from producer.page.failures import FailureGroup
from producer.page.views import JobSummary, Point
from producer.planning import format_duration
from producer.retention import iso_ms

REFRESH_S = 5
STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .6em;text-align:left;vertical-align:top}
tr+tr td{border-top:1px solid #ddd}progress{width:10em}.count{margin-right:.6em}
.state-completed{color:#176} .state-aborted,.state-completed_with_failures{color:#a22}
svg{width:100%;max-width:960px;border:1px solid #ccc}polyline{fill:none;stroke-width:1.5}
polyline.rows{stroke:#26a}polyline.throttled{stroke:#d40}text{font-size:12px}
text.rows{fill:#26a}text.throttled{fill:#d40}.axis{stroke:#999}.muted{color:#777}
.jobs .zero{display:none}
"""
# Fetch the page again and swap its <main>, while the page asks for it (data-refresh).
SCRIPT = f"""
if (document.body.dataset.refresh) setInterval(async () => {{
  const answer = await fetch(location.href, {{cache: "no-store"}});
  if (!answer.ok) return;
  const page = new DOMParser().parseFromString(await answer.text(), "text/html");
  document.querySelector("main").replaceWith(page.querySelector("main"));
}}, {REFRESH_S * 1000});
"""


def _document(title: str, body: str, *, refresh: bool) -> str:
    flag = ' data-refresh="1"' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body{flag}><main>{body}</main>"
        f"<script>{SCRIPT}</script></body></html>"
    )


def _counts(summary: JobSummary) -> str:
    status = summary.status
    return "".join(
        f'<span class="count{"" if n else " zero"}" data-status="{s.value}" data-count="{n}">'
        f"{s.value} {n:,}</span>"
        for s, n in ((s, status.counts.get(s, 0)) for s in status.statuses)
    )


def _progress(summary: JobSummary) -> str:
    done, total = summary.status.done, summary.status.job.total
    share = done / total if total else 1.0
    return (
        f'<progress value="{done}" max="{max(total, 1)}"></progress> '
        f'<span class="done" data-done="{done}" data-total="{total}">'
        f"{done:,} / {total:,} ({share:.1%})</span>"
    )


def _rate(summary: JobSummary) -> str:
    status, options = summary.status, summary.status.job.options
    effective = status.job.effective_rate_per_s or options.rate_per_s
    return (
        f"{status.rate_rows_per_s:,.1f} rows/s; calls at {effective:g}/s"
        f" (ceiling {options.rate_per_s:g}/s)"
    )


def _throttled(summary: JobSummary) -> str:
    share = summary.throttled_share
    text = "-" if share is None else f"{share:.1%}"
    return (
        f'<span class="throttled" data-throttled="{summary.throttled}" '
        f'data-calls="{summary.calls}">{text}</span>'
    )


def _eta(summary: JobSummary) -> str:
    return "ended" if summary.status.job.state.finished else summary.status.eta_text


def _state(summary: JobSummary) -> str:
    job = summary.status.job
    reason = f" ({escape(job.reason)})" if job.reason else ""
    return f'<span class="state state-{job.state.value}">{job.state.value}</span>{reason}'


def _job_row(summary: JobSummary) -> str:
    job = summary.status.job
    link = f'<a href="/jobs/{quote(job.job_id)}">{escape(job.job_id)}</a>'
    cells = [
        link,
        escape(job.options.describe()),
        _state(summary),
        _progress(summary),
        _counts(summary),
        _rate(summary),
        _throttled(summary),
        _eta(summary),
    ]
    return f'<tr data-job="{escape(job.job_id)}">' + "".join(f"<td>{c}</td>" for c in cells)


def render_index(summaries: Sequence[JobSummary]) -> str:
    """``/``: the jobs, newest first."""
    head = "".join(
        f"<th>{name}</th>"
        for name in ("job", "kind", "state", "progress", "rows", "rate", "429s", "ETA")
    )
    rows = "".join(_job_row(summary) for summary in summaries)
    empty = "" if summaries else '<p class="empty">No job in this Redis.</p>'
    body = f'<h1>tagsweep jobs</h1><table class="jobs"><tr>{head}</tr>{rows}</table>{empty}'
    return _document("tagsweep jobs", body, refresh=True)


def _limits(summary: JobSummary) -> str:
    job = summary.status.job
    limit = job.cloud_limit
    learnt = (
        "none learnt (no 429 named one)"
        if limit is None
        else f"{limit} ({limit.rate_per_s:,.3g} requests/s), named by the cloud's 429s"
    )
    if limit is not None and summary.limit_scope:
        learnt += f"; scope {summary.limit_scope}"
    started = iso_ms(job.started_at_ms, human=True) if job.started_at_ms else "-"
    ended = iso_ms(job.finished_at_ms, human=True) if job.finished_at_ms else "-"
    facts = {
        "rate": _rate(summary),
        "cloud limit": f'<span class="cloud-limit">{escape(learnt)}</span>',
        "calls": f"{summary.calls:,} ({summary.throttled:,} throttled: {_throttled(summary)})",
        "elapsed": format_duration(summary.status.elapsed_s),
        "started / ended": f"{started} / {ended}",
        "ETA": _eta(summary),
    }
    return "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts.items())


def _failures(groups: Sequence[FailureGroup]) -> str:
    if not groups:
        return '<p class="empty">Every row finished so far ended as the job wished.</p>'
    parts = []
    for group in groups:
        rows = "".join(
            f"<tr><td>{escape(row.image_id)}</td><td>{escape(row.key)}</td>"
            f"<td>{escape(row.project_id)}</td><td>{row.result.http_status or ''}</td>"
            f'<td class="error">{escape(row.result.error_message or "")}</td>'
            f"<td>{row.result.attempts}</td></tr>"
            for row in group.rows
        )
        title = f"{group.status} {group.error_code}".strip()
        parts.append(
            f'<section class="failures" data-status="{escape(group.status)}" '
            f'data-error="{escape(group.error_code)}" data-count="{group.count}">'
            f"<h3>{escape(title)}: {group.count:,} rows</h3>"
            "<table><tr><th>image</th><th>key</th><th>project</th><th>HTTP</th><th>error</th>"
            f"<th>attempts</th></tr>{rows}</table></section>"
        )
    return "".join(parts)


def render_job(summary: JobSummary, points: Sequence[Point], groups: Sequence[FailureGroup]) -> str:
    """``/jobs/JOB``: the job's row of ``/``, its limits, its chart and its failures."""
    job = summary.status.job
    report = f"/jobs/{quote(job.job_id)}/report.csv"
    body = (
        f'<p><a href="/">all jobs</a></p><h1>job {escape(job.job_id)}</h1>'
        f'<p class="muted">{escape(job.options.describe())}</p>'
        f'<table class="summary" data-job="{escape(job.job_id)}">'
        f"<tr><th>state</th><td>{_state(summary)}</td></tr>"
        f"<tr><th>progress</th><td>{_progress(summary)}</td></tr>"
        f"<tr><th>rows</th><td>{_counts(summary)}</td></tr>{_limits(summary)}</table>"
        f"<h2>Timeline</h2>{render_chart(points)}"
        f"<h2>Rows that did not end well</h2>{_failures(groups)}"
        f'<p><a id="report" href="{report}" download>The report (CSV)</a>, as '
        f"<code>tagsweep report {escape(job.job_id)}</code> writes it.</p>"
    )
    return _document(f"tagsweep job {job.job_id}", body, refresh=not summary.status.over)
