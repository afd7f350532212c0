"""The compact table of many results: one line per target:port, worst finding first.

Used by ``check`` with several targets, ``sweep`` on a terminal and ``report``. It reads JSON
rows through :mod:`rdprobe.render.rows`, so saved results of any rdprobe version render alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rdprobe.render.rows import RowView, by_severity
from rdprobe.render.styles import STYLE

COLUMNS = ("target", "security", "NLA", "TLS", "cert expires", "OS", "worst finding")


def ordered(views: Iterable[RowView], sort: str = "severity") -> list[RowView]:
    if sort == "severity":
        return by_severity(views)
    if sort == "target":
        return sorted(views, key=lambda v: v.target)
    return list(views)


def table(
    views: Iterable[RowView], *, sort: str = "severity", now: datetime | None = None
) -> Table:
    now = now or datetime.now(UTC)
    out = Table(show_edge=False, pad_edge=False, header_style="bold", expand=False)
    for name in COLUMNS:
        out.add_column(name, overflow="fold", no_wrap=name == "target")
    for v in ordered(views, sort):
        worst = v.worst_finding
        days = v.cert_days(now)
        expiry = Text(v.cert_expiry(now))
        if days is not None and days < 30:
            expiry.stylize("red" if days < 0 else "yellow")
        out.add_row(
            v.target,
            v.security,
            v.nla,
            v.tls,
            expiry,
            v.os,
            Text(f"{v.worst!s}: {worst.title}", STYLE[v.worst]) if worst else Text(v.outcome),
        )
    return out


def counts_line(views: list[RowView]) -> str:
    """'12 targets: 3 critical, 1 error, ...; RDP on 9'."""
    worst = Counter(v.worst for v in views)
    parts = [f"{worst[s]} {s}" for s in sorted(worst, reverse=True)]
    rdp = sum(1 for v in views if v.outcome == "rdp")
    return f"{len(views)} target(s): " + ", ".join(parts) + f"; RDP answers on {rdp}"


def wide_console() -> Console:
    """stdout; 140 columns when it is no terminal (rich would fold the table at 80)."""
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def render(
    views: list[RowView],
    console: Console,
    *,
    sort: str = "severity",
    now: datetime | None = None,
    more: int = 0,
) -> None:
    console.print(table(views, sort=sort, now=now))
    tail = f" ({more} more not shown: write every row with -o FILE)" if more else ""
    console.print(counts_line(views) + tail, markup=False, highlight=False)
