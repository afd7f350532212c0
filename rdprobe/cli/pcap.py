"""`rdprobe pcap FILE...`: what happened to each RDP connection in capture files.

Output, written as each connection ends (memory does not grow with the number of connections):
``--json`` (JSON Lines: one ``check``-style report object per connection plus a "connection"
object with the capture facts), ``--csv FILE``, or the human report (one block per connection,
then a summary per server). Damage in a file gives a warning on stderr and the connections read
before it; a file that is no capture gives a one-line error; a fault inside one connection gives
that row an ``error`` and the others go on.
"""

from __future__ import annotations

import csv
import ipaddress
import sys
from functools import partial
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from rdprobe.analysis.severity import Severity
from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.cli.options import VerboseOpt
from rdprobe.protocol.endpoint import format_endpoint as _endpoint
from rdprobe.render.styles import STYLE

if TYPE_CHECKING:  # loaded when the command runs: the capture modules load cryptography
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

    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line
    if host is not None:
        try:
            host = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            raise _usage(f"--host {excerpt(host)}: expected an IP address") from None
    from rdprobe.capture.analyze import CaptureError, analyze

    csv_out = None
    if csv_file is not None:
        try:
            csv_out = open(csv_file, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise _usage(f"--csv {csv_file}: {exc.strerror or exc}") from None
    out = Output(as_json=as_json, csv_out=csv_out, verbose=verbose)
    read = 0
    try:
        for path in files:
            before = out.count
            try:
                _, warnings = analyze(path, host=host, port=port, emit=partial(out.add, path))
            except CaptureError as exc:
                if len(files) == 1:
                    raise _usage(str(exc)) from None
                err.print(f"rdprobe: error: {exc}")
                continue
            except Exception as exc:  # a fault of ours in one file: the other files go on
                err.print(f"rdprobe: error: {path}: reading stopped: {one_line(exc)}")
                out.failed = True
                continue
            read += 1
            for warning in warnings:
                err.print(f"rdprobe: warning: {warning}")
            if out.count == before:
                err.print(f"rdprobe: {path}: no RDP connection found")
    finally:
        if csv_out is not None:
            csv_out.close()
    if not read and not out.count:
        raise _usage("no capture file could be read")
    out.finish()
    raise typer.Exit(int(out.exit_code))


def one_line(exc: BaseException) -> str:
    """An exception as one line of text (type, then its first line)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


#: Servers the closing per-server summary keeps (beyond: counted, not summarised), and distinct
#: answers kept per server (the security setting is told by distinct answers, not by their count).
MAX_SERVERS = 4096
MAX_ANSWERS = 32


class _Server:
    """What the closing summary needs of one server: counts and a few distinct attempts."""

    __slots__ = ("attempts", "count", "keys", "started", "worst")

    def __init__(self, started: Any) -> None:
        self.count = 0
        self.worst = Severity.INFO
        self.started = started
        self.attempts: list[Any] = []
        self.keys: set[tuple] = set()


class Output:
    """Writes each connection's row as it ends (JSON Lines, CSV, the human block); memory holds
    only the bounded per-server summary, not the rows."""

    def __init__(self, *, as_json: bool, csv_out: IO[str] | None, verbose: bool) -> None:
        from rich.console import Console

        from rdprobe.render import jsonl

        self.as_json, self.verbose = as_json, verbose
        self.console = Console(highlight=False)
        self.dumps, self.schema = jsonl.dumps, jsonl.SCHEMA
        from rdprobe.render.csv import PCAP_COLUMNS

        self.columns = tuple(name for name, _ in PCAP_COLUMNS)
        self.csv = csv.writer(csv_out, lineterminator="\n") if csv_out is not None else None
        if self.csv is not None:
            self.csv.writerow(self.columns)
        self.count = 0
        self.ok = True
        self.failed = False
        self.servers: dict[tuple[str, int, str], _Server] = {}
        self.servers_dropped = 0

    def add(self, path: str, conn: RdpConnection) -> None:
        """One finished connection: judge it and write it out; a fault stays in its own row."""
        from rdprobe.analysis.severity import ExitCode, exit_code
        from rdprobe.capture.analyze import judge
        from rdprobe.render.csv import pcap_csv_row
        from rdprobe.render.jsonl import report_dict

        self.count += 1
        try:
            report = judge(conn)
            row = {**report_dict(report), "capture": path, "connection": conn.to_dict()}
            text = self.dumps(row) + "\n" if self.as_json else None
            cells = pcap_csv_row(path, conn, report) if self.csv is not None else None
        except Exception as exc:  # per-connection isolation: this row says why, the rest go on
            self.ok = False
            self._write_error(path, conn, one_line(exc))
            return
        if conn.error or exit_code([(report.outcome, report.worst)]) is not ExitCode.OK:
            self.ok = False
        if text is not None:
            sys.stdout.write(text)
        else:
            try:
                self._human(conn, report)
            except Exception as exc:
                self.console.print(f"error: connection not shown: {one_line(exc)}")
        if self.csv is not None and cells is not None:
            self.csv.writerow(cells)
        self._remember(conn, report)

    def _write_error(self, path: str, conn: RdpConnection, error: str) -> None:
        endpoints = {
            "transport": conn.transport,
            "client": _safe(lambda: conn.client_address),
            "client_port": conn.client_port,
            "server": _safe(lambda: conn.server_address),
            "server_port": conn.server_port,
        }
        if self.as_json:
            row = {"schema": self.schema, "capture": path, "error": error, "connection": endpoints}
            sys.stdout.write(self.dumps(row) + "\n")
        else:
            who = f"{endpoints['client']}:{conn.client_port} -> {endpoints['server']}:{conn.server_port}"
            self.console.print(f"error: {conn.transport.upper()} {who}: not analysed: {error}")
        if self.csv is not None:
            cells = {"capture": path, "transport": conn.transport, "client": endpoints["client"],
                     "client_port": conn.client_port, "server": endpoints["server"],
                     "server_port": conn.server_port, "answer": f"not analysed: {error}",
                     "outcome": "error"}  # fmt: skip
            self.csv.writerow([str(cells.get(name, "")) for name in self.columns])

    def _human(self, conn: RdpConnection, report: Report) -> None:
        from rich.panel import Panel
        from rich.text import Text

        text = Text("\n".join(_conn_lines(conn, report)))
        for f in sorted(report.findings, key=lambda f: -f.severity):
            text.append(f"\n{f.severity!s:8} ", STYLE[f.severity])
            text.append(f.title, style="bold")
            if f.severity >= Severity.WARNING or self.verbose:
                text.append(f"\n         Why: {f.cause}", style="dim")
                text.append(f"\n         Fix: {f.fix}")
                if f.confirm:
                    text.append(f"\n         Confirm on the server: {f.confirm}", style="cyan")
        title = f"{_endpoint(conn.server_address, conn.server_port)} {conn.transport.upper()}"
        self.console.print(
            Panel(text, title=title, title_align="left", border_style=STYLE[report.worst])
        )

    def _remember(self, conn: RdpConnection, report: Report) -> None:
        key = (conn.server_address, conn.server_port, conn.transport)
        server = self.servers.get(key)
        if server is None:
            if len(self.servers) >= MAX_SERVERS:
                self.servers_dropped += 1
                return
            server = self.servers[key] = _Server(conn.started)
        server.count += 1
        server.worst = max(server.worst, report.worst)
        for attempt in report.observation.attempts[:1]:
            sig = (attempt.label, attempt.requested, attempt.tcp, attempt.reply_kind,
                   repr(attempt.tpdu), attempt.ended_by_server)  # fmt: skip
            if sig not in server.keys and len(server.attempts) < MAX_ANSWERS:
                server.keys.add(sig)
                server.attempts.append(attempt)

    @property
    def exit_code(self) -> int:
        """The one exit-code rule (analysis.severity.exit_code) over every row written."""
        from rdprobe.analysis.severity import ExitCode

        return ExitCode.OK if self.ok and self.count and not self.failed else ExitCode.PROBLEM

    def finish(self) -> None:
        """The closing per-server summary (human report only; JSON / CSV rows are complete)."""
        if self.as_json:
            return
        from rich.panel import Panel
        from rich.text import Text

        from rdprobe.analysis.classify import classify
        from rdprobe.analysis.observations import TargetObservation

        for (address, port, transport), server in self.servers.items():
            lines = []
            if transport == "tcp" and server.attempts:
                obs = TargetObservation(address, port, address, server.started)
                obs.attempts.extend(server.attempts)
                try:
                    merged = classify(obs, server.started)
                except Exception as exc:  # the summary is a convenience: say so, never crash
                    lines.append(f"security setting not summarised: {one_line(exc)}")
                else:
                    if merged.setting is not None:
                        lines.append(
                            f"Security (from {server.count} connection(s)): "
                            f"{merged.setting.summary}"
                        )
            lines.append(f"worst finding: {server.worst}")
            title = f"{_endpoint(address, port)} {transport.upper()} - {server.count} connection(s)"
            self.console.print(
                Panel(Text("\n".join(lines)), title=title, title_align="left",
                      border_style=STYLE[server.worst])
            )  # fmt: skip
        if self.servers_dropped:
            self.console.print(
                f"({self.servers_dropped} connection(s) to further servers are not summarised)"
            )


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


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
    if conn.tls_key_exchange:
        lines.append(f"TLS key exchange: {conn.tls_key_exchange}")
    if conn.tunnel:
        t = conn.tunnel
        lines.append(f"through a SOCKS5 proxy to {t.get('target_host')}:{t.get('target_port')}")
    if conn.not_rdp:
        lines.append(f"not RDP: {conn.not_rdp}")
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
