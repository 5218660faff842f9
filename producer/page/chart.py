"""A job's timeline as an inline SVG: rows finished and calls throttled per 10 s bucket.

Two polylines with a point per bucket, each scaled to its own highest bucket (429s are often
a hundredth of the rows) and labelled with it. Written by hand rather than with a plotting
library: two lines of points need no dependency and no script from outside the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from producer.page.views import Point

WIDTH = 960
HEIGHT = 220
PAD = 30


def _polyline(values: Sequence[int], css: str) -> str:
    top = max(values) or 1
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    points = " ".join(
        f"{PAD + i * step:.1f},{HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD):.1f}"
        for i, value in enumerate(values)
    )
    return f'<polyline class="{css}" points="{points}"/>'


def render_chart(points: Sequence[Point], *, bucket_s: int = 10) -> str:
    """The SVG of ``points`` (one per bucket), or a line saying there is none yet."""
    if not points:
        return '<p class="empty">No row finished yet.</p>'
    rows = [point.rows for point in points]
    throttled = [point.throttled for point in points]
    minutes = len(points) * bucket_s / 60
    label = (
        f"{len(points)} buckets of {bucket_s} s ({minutes:,.1f} min); highest: "
        f"{max(rows):,} rows, {max(throttled):,} calls throttled"
    )
    return (
        f'<svg id="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'data-points="{len(points)}" aria-label="{escape(label)}">'
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
        f"{_polyline(rows, 'rows')}{_polyline(throttled, 'throttled')}"
        f'<text x="{PAD}" y="18">{escape(label)}</text>'
        f'<text class="rows" x="{PAD}" y="{HEIGHT - 8}">rows finished / {bucket_s} s</text>'
        f'<text class="throttled" x="{WIDTH // 2}" y="{HEIGHT - 8}">'
        f"calls throttled (429) / {bucket_s} s</text></svg>"
    )
