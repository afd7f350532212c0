"""The self-contained HTML report of many results (``rdprobe report FILE... --html OUT``).

One file, inline CSS and SVG, no script and no fetch, so it opens from a file share or a mail
attachment. Jinja2 renders it with autoescaping on: every string in it may come from a server
(certificate subjects, banners), and escaping by default is what keeps those inert.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from markupsafe import Markup

from rdprobe._version import __version__
from rdprobe.analysis.severity import Severity
from rdprobe.render import svg
from rdprobe.render.rows import RowView, by_severity


def _colour(severity: Severity) -> str:
    return str(severity)


def _charts(views: Sequence[RowView], now: datetime) -> dict[str, Markup]:
    settings = Counter(
        (f"{v.security}, NLA {v.nla}" if v.nla != "-" else v.security)
        if v.security != "-"
        else f"no RDP ({v.outcome})"
        for v in views
    )
    by_sev = Counter(f.severity for v in views for f in v.findings)
    os_builds = Counter(v.os for v in views if v.os != "-")
    certs = []
    for v in views:
        if v.cert_not_after is None:
            continue
        days = v.cert_days(now) or 0
        colour = (
            "critical" if days < 0 else "warning" if days < 30 else "bar" if days < 90 else "info"
        )
        certs.append((v.target, v.cert_not_after, colour))
    return {
        "settings": Markup(
            svg.bars(
                [(k, n, "bar") for k, n in settings.most_common(12)],
                title="Security settings (targets)",
            )
        ),
        "severity": Markup(
            svg.bars(
                [(str(s), by_sev.get(s, 0), _colour(s)) for s in sorted(Severity, reverse=True)],
                title="Findings by severity",
            )
        ),
        "os": Markup(
            svg.bars(
                [(k, n, "bar") for k, n in os_builds.most_common(12)], title="OS builds (NTLM)"
            )
        ),
        "expiry": Markup(svg.timeline(certs, now=now, title="Certificates expire", width=940)),
    }


def _summary(views: Sequence[RowView], now: datetime) -> list[tuple[str, int, str]]:
    worst = Counter(v.worst for v in views)
    expiring = sum(1 for v in views if (d := v.cert_days(now)) is not None and d < 30)
    return [
        ("targets", len(views), "bar"),
        ("RDP answers", sum(1 for v in views if v.outcome == "rdp"), "info"),
        ("critical", worst.get(Severity.CRITICAL, 0), "critical"),
        ("error", worst.get(Severity.ERROR, 0), "error"),
        ("warning", worst.get(Severity.WARNING, 0), "warning"),
        ("certificates < 30 days or expired", expiring, "warning"),
    ]


def render(
    views: Sequence[RowView],
    *,
    sources: Sequence[str] = (),
    now: datetime | None = None,
    title: str = "rdprobe report",
) -> str:
    """The whole HTML document (a str), targets worst first."""
    from jinja2 import Environment, StrictUndefined

    now = now or datetime.now(UTC)
    env = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    template = env.from_string(
        files("rdprobe.render").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    )
    ordered = by_severity(views)
    anchors: list[str] = []
    used: Counter[str] = Counter()
    for v in ordered:  # two connections of one capture to one server: distinct ids
        used[v.anchor] += 1
        anchors.append(v.anchor if used[v.anchor] == 1 else f"{v.anchor}-{used[v.anchor]}")
    context: dict[str, Any] = {
        "title": title,
        "now": now,
        "version": __version__,
        "sources": list(sources),
        "views": ordered,
        "anchors": anchors,
        "summary": _summary(ordered, now),
        "charts": _charts(ordered, now),
        "colours": svg.COLOURS,
    }
    return template.render(**context)
