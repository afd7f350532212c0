"""The terminal report of saved rows (``rdprobe report FILE``): one block per target, findings
with why, fix and how to confirm on the server. Live results print through render.human, which
has the Report objects; this one has only what the JSON rows kept."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from rdprobe.analysis.severity import Severity
from rdprobe.render.rows import RowView
from rdprobe.render.styles import STYLE


def block(v: RowView, *, verbose: bool = False) -> Panel:
    text = Text(v.target, style="bold")
    text.append(f"  {v.outcome.replace('_', ' ')}", STYLE[v.worst])
    summary = (v.row.get("setting") or {}).get("summary") if isinstance(v.row, dict) else None
    if summary:
        text.append(f"\nSecurity: {summary}")
    if v.cert_subject:
        text.append(f"\nCertificate: {v.cert_subject}, expires {v.cert_expiry_text}")
    if v.os != "-":
        text.append(f"\nOS: {v.os}")
    for f in sorted(v.findings, key=lambda f: -f.severity):
        text.append(f"\n{f.severity!s:8} ", STYLE[f.severity])
        text.append(f.title, style="bold")
        if f.severity >= Severity.WARNING or verbose:
            if f.cause:
                text.append(f"\n         Why: {f.cause}", style="dim")
            if f.fix:
                text.append(f"\n         Fix: {f.fix}")
            if f.confirm:
                text.append(f"\n         Confirm on the server: {f.confirm}", style="cyan")
    where = f" ({v.source})" if v.source else ""
    return Panel(
        Group(text), title=f"{v.kind}{where}", title_align="left", border_style=STYLE[v.worst]
    )


def render(views: Sequence[RowView], console: Console, *, verbose: bool = False) -> None:
    for v in views:
        console.print(block(v, verbose=verbose))
