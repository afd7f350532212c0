"""The terminal report of ``check``: one block per target, findings with cause and fix.

Laid out by render.text, not rich: rich's import took longer than the whole check of a refused
port (issue 12). The demo's table still uses rich, imported where it is drawn.
"""

from __future__ import annotations

from rdprobe.analysis.classify import Report
from rdprobe.analysis.severity import Severity
from rdprobe.protocol.endpoint import format_endpoint
from rdprobe.render.styles import STYLE
from rdprobe.render.terminal import write_blocks
from rdprobe.render.text import BOX, Line, boxed, clean, columns, fit, paragraphs, wrap

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Protocol, TextIO

    from rich.console import Console

    from rdprobe.render.terminal import Terminal
    from rdprobe.render.text import Justify

    class Told(Protocol):
        """A finding as a view has it: a live Finding, or a saved row's FindingView."""

        @property
        def severity(self) -> Severity: ...
        @property
        def title(self) -> str: ...
        @property
        def cause(self) -> str: ...
        @property
        def fix(self) -> str: ...
        @property
        def confirm(self) -> str: ...


#: continuation lines of a wrapped paragraph start this many columns in
HANG = 2
#: the space between two columns
GAP = "  "

STAGE_NAMES = {
    "tls": "TLS",
    "tls_versions": "TLS versions",
    "nla": "NLA (NTLM)",
    "mcs": "MCS",
    "session": "Logon screen",
    "udp": "RDP over UDP",
    "auth": "Logon (--user)",
}
OUTCOME_TEXT = {
    "rdp": "RDP answers",
    "wrong_service": "another service answers",
    "not_rdp": "not RDP: unknown bytes",
    "x224_not_rdp": "ISO transport (X.224), not RDP",
}


def _headline(report: Report, width: int) -> list[Line]:
    obs = report.observation
    where = format_endpoint(obs.host, obs.port)
    if obs.address and obs.address != obs.host:
        where += f" ({obs.address})"
    outcome = OUTCOME_TEXT.get(report.outcome, report.outcome.replace("_", " "))
    lines = wrap([(where, "bold"), ("  ", ""), (outcome, STYLE[report.worst])], width)
    if report.setting is not None:
        lines += wrap([(f"Security: {report.setting.summary}", "")], width, hang=HANG)
    if report.service is not None:
        detail = f" — {report.service.detail}" if report.service.detail else ""
        lines += wrap([(f"Service: {report.service.name}{detail}", "")], width, hang=HANG)
    return lines


NEGOTIATION_HEADER = ("client offered", "server answered", "connect ms", "reply ms")


def _attempts(report: Report, width: int, rule_char: str) -> list[Line]:
    obs = report.observation
    if not any(a.tcp == "connected" for a in obs.attempts) or report.outcome != "rdp":
        return []
    from rdprobe.analysis.setting import describe_answer  # X.224: only where RDP answered

    def ms(value: float | None) -> str:
        return f"{value:.1f}" if value is not None else "-"

    rows = [
        (a.label, describe_answer(a), ms(a.connect_ms), ms(a.first_byte_ms)) for a in obs.attempts
    ]
    natural = [max(len(clean(r[i])) for r in (NEGOTIATION_HEADER, *rows)) for i in range(4)]
    widths = fit(natural, width, gap=len(GAP), shrink=1)
    justify: tuple[Justify, ...] = ("left", "left", "right", "right")

    def cells(row: tuple[str, ...], style: str) -> list[list[Line]]:
        return [
            wrap([(v, style)], w, hang=HANG if i == 1 else 0)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ]

    rule = [[[(rule_char * w, "dim")]] for w in widths]
    return [
        [("Negotiation", "bold")],
        *columns([cells(NEGOTIATION_HEADER, "bold"), rule], widths, gap=GAP, justify=justify),
        *columns([cells(r, "") for r in rows], widths, gap=GAP, justify=justify),
    ]


def _repeat(report: Report, width: int) -> list[Line]:
    rep = report.observation.repeat
    if rep is None:
        return []
    counts = ", ".join(f"{k} {v}" for k, v in rep.outcomes.items())
    lat = "  ".join(
        f"{name} p50 {d['p50']:.1f} / p90 {d['p90']:.1f} / max {d['max']:.1f} ms"
        for name, d in (("connect", rep.connect_ms), ("first byte", rep.first_byte_ms))
        if d
    )
    return paragraphs([(f"Repeated {rep.tries}x: {counts}\n{lat}", "")], width)


def _stage_lines(report: Report, width: int) -> list[Line]:
    lines: list[Line] = []
    for name, facts in report.observation.stages.items():
        if name == "config" or not isinstance(facts, dict):
            continue
        summary = facts.get("summary")
        if summary:
            lines += wrap([(f"{STAGE_NAMES.get(name, name)}: {summary}", "")], width, hang=HANG)
    return lines


SEVERITY_WIDTH = 8


def finding_lines(findings: Iterable[Told], verbose: bool, width: int) -> list[Line]:
    """Findings worst first, their severity in a column of its own: the title, and from
    warnings up (or for all with ``verbose``) why, the fix and how to confirm on the server.
    The one layout of findings in the terminal: ``check`` and ``report`` both print it."""
    body_width = width - SEVERITY_WIDTH - len(GAP)
    rows = []
    for f in sorted(findings, key=lambda f: -f.severity):
        body = wrap([(f.title, "bold")], body_width)
        if f.severity >= Severity.WARNING or verbose:
            for label, text, style in (
                ("Why", f.cause, "dim"),
                ("Fix", f.fix, ""),
                ("Confirm on the server", f.confirm, "cyan"),
            ):
                if text:
                    body += wrap([(f"  {label}: {text}", style)], body_width, hang=2 + HANG)
        rows.append([[[(str(f.severity), STYLE[f.severity])]], body])
    return columns(rows, [SEVERITY_WIDTH, body_width], gap=GAP)


def report_lines(
    report: Report, width: int, *, verbose: bool = False, box: str = BOX
) -> list[Line]:
    """One target's block, ``width`` columns wide: what answered, the negotiation, each stage's
    summary, then the findings, worst first (why, fix and how to confirm from warnings up, or
    for all with ``verbose``)."""
    inner = width - 4
    lines = [
        *_headline(report, inner),
        *_attempts(report, inner, box[1]),  # the box's own line: "-" where it is ASCII
        *_repeat(report, inner),
        *_stage_lines(report, inner),
        *finding_lines(report.findings, verbose, inner),
    ]
    return boxed(lines, width, STYLE[report.worst], box)


def render(
    reports: list[Report],
    stream: TextIO | None = None,
    *,
    verbose: bool = False,
    terminal: Terminal | None = None,
) -> None:
    """The check report on ``stream`` (standard output by default), laid out for it."""
    write_blocks(
        stream,
        terminal,
        lambda width, box: (report_lines(r, width, verbose=verbose, box=box) for r in reports),
    )


def _verdict(report: Report) -> str:
    if report.setting is not None:
        return report.setting.summary
    if report.service is not None:
        return f"{report.service.name}" + (
            f" ({report.service.detail})" if report.service.detail else ""
        )
    udp = report.observation.udp
    if udp is not None and udp.summary:
        return f"TCP {report.outcome.replace('_', ' ')}; UDP: {udp.summary}"
    return report.outcome.replace("_", " ")


def render_demo(rows: list[tuple[str, str, Report]], console: Console) -> None:
    """One row per emulated listener: what it imitates, what rdprobe diagnosed."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title="rdprobe demo: emulated listeners on 127.0.0.1", expand=True, show_lines=True
    )
    table.add_column("listener (imitates)", ratio=3)
    table.add_column("rdprobe says", ratio=3)
    table.add_column("findings", ratio=4)
    for name, description, report in rows:
        label = Text(name, style="bold")
        label.append("\n" + description.split(":")[0].split(" [")[0], style="dim")
        findings = Text()
        for f in sorted(report.findings, key=lambda f: -f.severity):
            if f.id == "rdp.answered":
                continue
            if findings:
                findings.append("\n")
            findings.append(f"{f.severity}: ", STYLE[f.severity])
            findings.append(f.title)
        table.add_row(label, _verdict(report), findings)
    console.print(table)
    console.print(
        "Each listener replays bytes of a real server or imitates a real failure: "
        "`rdprobe emulate --list` names them, `rdprobe emulate --profile NAME` serves one."
    )
