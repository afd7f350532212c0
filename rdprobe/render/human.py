"""The terminal report (rich): one block per target, findings with cause and fix."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rdprobe.analysis.classify import Report
from rdprobe.analysis.severity import Severity
from rdprobe.protocol.endpoint import format_endpoint
from rdprobe.render.styles import STYLE

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


def _headline(report: Report) -> Text:
    obs = report.observation
    where = format_endpoint(obs.host, obs.port)
    if obs.address and obs.address != obs.host:
        where += f" ({obs.address})"
    text = Text(where, style="bold")
    text.append("  ")
    text.append(
        OUTCOME_TEXT.get(report.outcome, report.outcome.replace("_", " ")), STYLE[report.worst]
    )
    if report.setting is not None:
        text.append(f"\nSecurity: {report.setting.summary}")
    if report.service is not None:
        detail = f" — {report.service.detail}" if report.service.detail else ""
        text.append(f"\nService: {report.service.name}{detail}")
    return text


def _attempts(report: Report) -> Table | None:
    obs = report.observation
    if not any(a.tcp == "connected" for a in obs.attempts) or report.outcome != "rdp":
        return None
    from rdprobe.analysis.setting import describe_answer  # X.224: only where RDP answered

    table = Table(title="Negotiation", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("client offered")
    table.add_column("server answered")
    table.add_column("connect ms", justify="right")
    table.add_column("reply ms", justify="right")
    for a in obs.attempts:
        table.add_row(
            a.label,
            describe_answer(a),
            f"{a.connect_ms:.1f}" if a.connect_ms is not None else "-",
            f"{a.first_byte_ms:.1f}" if a.first_byte_ms is not None else "-",
        )
    return table


def _repeat(report: Report) -> Text | None:
    rep = report.observation.repeat
    if rep is None:
        return None
    counts = ", ".join(f"{k} {v}" for k, v in rep.outcomes.items())
    lat = "  ".join(
        f"{name} p50 {d['p50']:.1f} / p90 {d['p90']:.1f} / max {d['max']:.1f} ms"
        for name, d in (("connect", rep.connect_ms), ("first byte", rep.first_byte_ms))
        if d
    )
    return Text(f"Repeated {rep.tries}x: {counts}\n{lat}")


def _stage_lines(report: Report) -> Text | None:
    lines = []
    for name, facts in report.observation.stages.items():
        if name == "config" or not isinstance(facts, dict):
            continue
        summary = facts.get("summary")
        if summary:
            lines.append(f"{STAGE_NAMES.get(name, name)}: {summary}")
    return Text("\n".join(lines)) if lines else None


def _findings(report: Report, verbose: bool) -> Table:
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None, expand=True)
    table.add_column("severity", width=8, no_wrap=True)
    table.add_column("finding", ratio=1)
    for f in sorted(report.findings, key=lambda f: -f.severity):
        body = Text(f.title, style="bold")
        if f.severity >= Severity.WARNING or verbose:
            body.append(f"\n  Why: {f.cause}", style="dim")
            body.append(f"\n  Fix: {f.fix}")
            if f.confirm:
                body.append(f"\n  Confirm on the server: {f.confirm}", style="cyan")
        table.add_row(Text(str(f.severity), STYLE[f.severity]), body)
    return table


def render(reports: list[Report], console: Console, *, verbose: bool = False) -> None:
    for report in reports:
        parts = [
            p
            for p in (
                _headline(report),
                _attempts(report),
                _repeat(report),
                _stage_lines(report),
                _findings(report, verbose),
            )
            if p is not None
        ]
        console.print(Panel(Group(*parts), border_style=STYLE[report.worst], expand=True))


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
