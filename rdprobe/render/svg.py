"""Small inline SVG charts for the HTML report: horizontal bars and a date timeline.

Hand-made rather than a chart library: the report needs two kinds of chart, each a few
``<rect>``/``<circle>`` elements, and must open from a file share with no network; SVG chart
libraries either reference script or style sheets on the web from their output (pygal's
default tooltips) or bring a plotting stack (matplotlib, ~40 MB) to draw a handful of rectangles.
Every text goes through ``html.escape`` (server-chosen strings end up in these labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

#: Colours of the severities and of neutral bars (also used by the report's CSS).
COLOURS = {
    "critical": "#8b0000",
    "error": "#d62728",
    "warning": "#e6a100",
    "info": "#2c8a3c",
    "bar": "#4f7cac",
}


def bars(
    items: Sequence[tuple[str, int, str]], *, title: str, width: int = 470, label_width: int = 230
) -> str:
    """Horizontal bar chart of (label, count, colour); ``colour`` may be a COLOURS key."""
    row_h, top = 24, 28
    height = top + row_h * max(1, len(items)) + 8
    peak = max((n for _, n, _ in items), default=0) or 1
    span = width - label_width - 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if not items:
        out.append(f'<text x="0" y="{top + 16}" class="muted">none</text>')
    for i, (label, count, colour) in enumerate(items):
        y = top + i * row_h
        w = max(2, round(span * count / peak)) if count else 0
        fill = COLOURS.get(colour, colour)
        shown = label if len(label) <= 34 else label[:33] + "…"
        out.append(
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(shown)}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{w}" height="{row_h - 8}" '
            f'fill="{escape(fill)}" rx="2"/>'
            f'<text x="{label_width + w + 6}" y="{y + 15}">{count}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def timeline(
    points: Sequence[tuple[str, datetime, str]],
    *,
    now: datetime,
    title: str,
    width: int = 940,
) -> str:
    """Certificate expiry dates on a time axis: one dot (and label) per (label, date, colour),
    with marks at now, +30 and +90 days. The axis spans every point and at least 120 days."""
    row_h, top, left = 18, 46, 10
    height = top + row_h * max(1, len(points)) + 30
    dates = [d for _, d, _ in points]
    # long-expired certificates would squeeze now, +30 and +90 days together: they sit at the
    # left edge (their label keeps the date) and the axis starts 60 days back at most
    start = max(min([now - timedelta(days=10), *dates]), now - timedelta(days=60))
    end = max([now + timedelta(days=120), *dates])
    total = (end - start).total_seconds() or 1.0
    span = width - left - 260

    def x(when: datetime) -> float:
        return round(left + span * max(0.0, (when - start).total_seconds()) / total, 1)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top - 8}" x2="{left + span}" y2="{top - 8}" class="axis"/>',
    ]
    for label, when in (
        ("now", now),
        ("+30 d", now + timedelta(days=30)),
        ("+90 d", now + timedelta(days=90)),
    ):
        out.append(
            f'<line x1="{x(when)}" y1="{top - 14}" x2="{x(when)}" y2="{height - 22}" '
            f'class="mark"/><text x="{x(when)}" y="{top - 18}" text-anchor="middle" '
            f'class="muted">{label}</text>'
        )
    out.append(
        f'<text x="{left}" y="{height - 6}" class="muted">{start.date().isoformat()}</text>'
        f'<text x="{left + span}" y="{height - 6}" text-anchor="end" class="muted">'
        f"{end.date().isoformat()}</text>"
    )
    if not points:
        out.append(f'<text x="{left}" y="{top + 12}" class="muted">no certificates seen</text>')
    for i, (label, when, colour) in enumerate(sorted(points, key=lambda p: p[1])):
        y = top + i * row_h + 6
        fill = COLOURS.get(colour, colour)
        out.append(
            f'<circle cx="{x(when)}" cy="{y}" r="5" fill="{escape(fill)}"/>'
            f'<text x="{left + span + 12}" y="{y + 4}">{escape(label)} — '
            f"{when.date().isoformat()}</text>"
        )
    out.append("</svg>")
    return "".join(out)
