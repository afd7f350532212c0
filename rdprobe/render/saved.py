"""The terminal report of saved rows (``rdprobe report FILE``): one block per target, findings
with why, fix and how to confirm on the server, laid out as ``check`` lays out its own
(render.human.finding_lines). Live results print through render.human, which has the Report
objects; this one has only what the JSON rows kept."""

from __future__ import annotations

from collections.abc import Sequence

from rdprobe.render.human import HANG, finding_lines
from rdprobe.render.rows import RowView
from rdprobe.render.styles import STYLE
from rdprobe.render.terminal import write_blocks
from rdprobe.render.text import BOX, Line, boxed, wrap

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py
if TYPE_CHECKING:
    from typing import TextIO

    from rdprobe.render.terminal import Terminal


def block(v: RowView, width: int, *, verbose: bool = False, box: str = BOX) -> list[Line]:
    """One saved row's block, ``width`` columns wide, its kind and file in the top border."""
    inner = width - 4
    lines = wrap(
        [(v.target, "bold"), ("  ", ""), (v.outcome.replace("_", " "), STYLE[v.worst])], inner
    )
    summary = (v.row.get("setting") or {}).get("summary") if isinstance(v.row, dict) else None
    facts = [f"Security: {summary}" if summary else ""]
    if v.cert_subject:
        facts.append(f"Certificate: {v.cert_subject}, expires {v.cert_expiry_text}")
    if v.os != "-":
        facts.append(f"OS: {v.os}")
    for fact in filter(None, facts):
        lines += wrap([(fact, "")], inner, hang=HANG)
    lines += finding_lines(v.findings, verbose, inner)
    where = f" ({v.source})" if v.source else ""
    return boxed(lines, width, STYLE[v.worst], box, title=f"{v.kind}{where}")


def render(
    views: Sequence[RowView],
    stream: TextIO | None = None,
    *,
    verbose: bool = False,
    terminal: Terminal | None = None,
) -> None:
    write_blocks(
        stream,
        terminal,
        lambda width, box: (block(v, width, verbose=verbose, box=box) for v in views),
    )
