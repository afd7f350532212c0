"""`rdprobe pcap FILE...`: what happened to each RDP connection in capture files.

Output: a human report grouped by
server (stdout), ``--json`` (JSON Lines: one ``check``-style report object per connection plus a
"connection" object with the capture facts), ``--csv FILE``. Damage in a file gives a warning on
stderr and the connections read before it; a file that is no capture gives a one-line error.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rdprobe.analysis.severity import Severity
from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.cli.options import VerboseOpt
from rdprobe.protocol.endpoint import format_endpoint as _endpoint
from rdprobe.render.styles import STYLE

if TYPE_CHECKING:  # loaded when the command runs: the capture modules load cryptography
    from rich.console import Console

    from rdprobe.analysis.classify import Report
    from rdprobe.capture.connection import RdpConnection


def _usage(message: str) -> Exception:
    return UsageError(message)


def pcap(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE", help="pcap / pcapng files, optionally gzipped")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per connection.")
    ] = False,
    csv_file: Annotated[
        str | None,
        typer.Option(
            "--csv", metavar="FILE", help="Also write one CSV line per connection to FILE."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(metavar="ADDR", help="Only connections from or to this IP address."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, metavar="PORT", help="Only connections on this TCP/UDP port."
        ),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Diagnose the RDP connections in capture files, with the findings `check` would give."""
    from rich.console import Console

    from rdprobe.analysis.severity import exit_code
    from rdprobe.render import jsonl
    from rdprobe.render.jsonl import report_dict

    err = Console(stderr=True, highlight=False)
    if host is not None:
        try:
            host = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            raise _usage(f"--host {excerpt(host)}: expected an IP address") from None
    from rdprobe.capture.analyze import CaptureError, analyze, judge

    results: list[tuple[str, RdpConnection, Report]] = []
    read = 0
    for path in files:
        try:
            connections, warnings = analyze(path, host=host, port=port)
        except CaptureError as exc:
            if len(files) == 1:
                raise _usage(str(exc)) from None
            err.print(f"rdprobe: error: {exc}")
            continue
        read += 1
        for warning in warnings:
            err.print(f"rdprobe: warning: {warning}")
        if not connections:
            err.print(f"rdprobe: {path}: no RDP connection found")
        results += [(path, c, judge(c)) for c in connections]
    if not read:
        raise _usage("no capture file could be read")
    if as_json:
        for path, conn, report in results:
            row = {**report_dict(report), "capture": path, "connection": conn.to_dict()}
            sys.stdout.write(jsonl.dumps(row) + "\n")
    else:
        render(results, Console(highlight=False), verbose=verbose)
    if csv_file is not None:
        from rdprobe.render.csv import write_pcap_csv as write_csv

        try:
            with open(csv_file, "w", newline="", encoding="utf-8") as out:
                write_csv(results, out)
        except OSError as exc:
            raise _usage(f"--csv {csv_file}: {exc.strerror or exc}") from None
    raise typer.Exit(int(exit_code((r.outcome, r.worst) for _, _, r in results)))


# -- rendering ----------------------------------------------------------------------------------


def _conn_lines(conn: RdpConnection, report: Report) -> list[str]:
    from rdprobe.analysis.setting import describe_answer

    d = conn.to_dict()
    lines = [f"{d['first_seen']}  from {_endpoint(conn.client_address, conn.client_port)}"]
    if conn.transport == "udp":
        udp = d["udp"]
        ack = udp["syn_ack"]
        lines.append(
            f"RDP-UDP: {udp['syn_count']} SYN(s), "
            + (f"SYN+ACK {ack['version_name'] or ''}".rstrip() if ack else "no SYN+ACK")
        )
        return lines
    req = conn.request
    who = []
    if req and req.cookie is not None:
        who.append(f"cookie '{req.cookie}'")
    if req and req.routing_token:
        who.append(f"routing token {req.routing_token.decode('latin-1').strip()!r}")
    if who:
        lines.append(", ".join(who))
    attempt = report.observation.attempts[0] if report.observation.attempts else None
    if attempt is not None:
        lines.append(f"offered {attempt.label} -> {describe_answer(attempt)}")
    if d["client_info"]:
        c = d["client_info"]
        lines.append(
            f"client {c['client_name']}, {c['client_build_name']} (build {c['client_build']}), "
            f"{c['desktop_width']}x{c['desktop_height']} {c['color_depth']}, "
            f"{c['keyboard_layout_name']}; channels {','.join(c['channels'] or []) or 'none'}; "
            f"encryption offered {','.join(c['encryption_methods']) or 'none'}"
        )
    if d["server_info"]:
        s = d["server_info"]
        cert = ""
        if s["cert_type"]:
            cert = f"; {s['cert_count']} {s['cert_type']} certificate(s), " + (
                "permanent" if s["cert_permanent"] else "temporary"
            )
            if s["cert_verified"] is not None:
                cert += ", signature OK" if s["cert_verified"] else ", BAD signature"
        lines.append(
            f"server {s['rdp_version']}, {s['encryption_method']} / {s['encryption_level']}{cert}"
        )
    for name, facts in report.observation.stages.items():
        if name in ("tls", "mcs") and isinstance(facts, dict) and facts.get("summary"):
            lines.append(f"{name.upper()}: {facts['summary']}")
    if conn.tls_client_hello and conn.tls_version is None:
        lines.append("TLS: ClientHello seen, no server flight in clear")
    timing = [
        f"{label} {ms:.1f} ms"
        for label, a, b in (
            ("SYN->SYN+ACK", "syn", "synack"),
            ("CR->reply", "request_sent", "first_reply"),
            ("MCS", "mcs_ci", "mcs_cr"),
            ("TLS hello", "tls_client_hello", "tls_server_hello"),
        )
        if (ms := conn.ms(a, b)) is not None
    ]
    if timing:
        lines.append("timing: " + ", ".join(timing))
    end = f"ended: {conn.end_reason or 'unknown'}"
    if conn.ended_by:
        end += f" by the {conn.ended_by}"
    if conn.end_ts is not None:
        end += f" after {conn.end_ts - conn.first_ts:.3f} s"
    lines.append(end)
    lines += [f"note: {n}" for n in conn.notes]
    return lines


def render(
    results: list[tuple[str, RdpConnection, Report]], console: Console, *, verbose: bool = False
) -> None:
    """One panel per server (address, port, transport), one block per connection inside."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    from rdprobe.analysis.classify import classify

    groups: dict[tuple[str, int, str], list[tuple[RdpConnection, Report]]] = defaultdict(list)
    for _path, conn, report in results:
        groups[(conn.server_address, conn.server_port, conn.transport)].append((conn, report))
    for (address, port, transport), items in groups.items():
        worst = max(r.worst for _, r in items)
        blocks: list[Any] = []
        if transport == "tcp":
            from rdprobe.capture.connection import server_observation

            merged = classify(server_observation([c for c, _ in items]), items[0][0].started)
            if merged.setting is not None:
                blocks += [
                    Text(
                        f"Security (from {len(items)} connection(s)): {merged.setting.summary}",
                        style="bold",
                    ),
                    Text(""),
                ]
        for conn, report in items:
            text = Text("\n".join(_conn_lines(conn, report)))
            for f in sorted(report.findings, key=lambda f: -f.severity):
                text.append(f"\n{f.severity!s:8} ", STYLE[f.severity])
                text.append(f.title, style="bold")
                if f.severity >= Severity.WARNING or verbose:
                    text.append(f"\n         Why: {f.cause}", style="dim")
                    text.append(f"\n         Fix: {f.fix}")
                    if f.confirm:
                        text.append(f"\n         Confirm on the server: {f.confirm}", style="cyan")
            blocks.append(text)
            blocks.append(Text(""))
        title = f"{_endpoint(address, port)} {transport.upper()} - {len(items)} connection(s)"
        console.print(
            Panel(Group(*blocks[:-1]), title=title, title_align="left", border_style=STYLE[worst])
        )
