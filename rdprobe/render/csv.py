"""The CSV forms, flushed line by line: each column named once, next to how its cell is made.

``rdprobe sweep --csv``: one line per target:port, from the JSON row
(``rdprobe.render.jsonl.report_dict``): target, host, port, address, outcome, worst,
security_layer, nla_required (true / false / empty = not known), service (the non-RDP service's
name), finding_ids (space separated), started.

``rdprobe pcap --csv``: one line per connection of a capture, from the connection and its report.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rdprobe.analysis.classify import Report
    from rdprobe.capture.connection import RdpConnection


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _finding_ids(findings: Iterable[Any]) -> str:
    return " ".join(str(f.get("id")) for f in findings if isinstance(f, dict))


Row = dict[str, Any]
#: (column, its cell from a JSON row) of `sweep --csv`
SWEEP_COLUMNS: tuple[tuple[str, Callable[[Row], Any]], ...] = (
    ("target", lambda r: r.get("target")),
    ("host", lambda r: r.get("host")),
    ("port", lambda r: r.get("port")),
    ("address", lambda r: r.get("address")),
    ("outcome", lambda r: r.get("outcome")),
    ("worst", lambda r: r.get("worst")),
    ("security_layer", lambda r: (r.get("setting") or {}).get("security_layer")),
    ("nla_required", lambda r: (r.get("setting") or {}).get("nla_required")),
    ("service", lambda r: (r.get("service") or {}).get("name")),
    ("finding_ids", lambda r: _finding_ids(r.get("findings") or ())),
    ("started", lambda r: r.get("started")),
)
COLUMNS = tuple(name for name, _ in SWEEP_COLUMNS)


def csv_row(row: Row) -> list[str]:
    """The CSV cells of one JSON row (``rdprobe.render.jsonl.report_dict``)."""
    return [_text(cell(row)) for _, cell in SWEEP_COLUMNS]


class CsvWriter:
    """Writes rows to an open text file (opened with ``newline=''``), flushing each line."""

    def __init__(self, out: IO[str], *, header: bool = True) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        if header:
            self._writer.writerow(COLUMNS)
            out.flush()

    def write(self, row: Row) -> None:
        self._writer.writerow(csv_row(row))
        self._out.flush()


# -- pcap ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Conn:
    """One capture connection with its views computed once for all its cells."""

    path: str
    conn: RdpConnection
    report: Report
    d: dict[str, Any]  #: conn.to_dict()
    z: dict[str, Any]  #: Zeek's rdp.log names of the same facts

    @property
    def answer(self) -> str | None:
        from rdprobe.analysis.setting import describe_answer

        attempts = self.report.observation.attempts
        return describe_answer(attempts[0]) if attempts else None

    @property
    def cert_subject(self) -> str | None:
        from rdprobe.analysis.facts import TlsFacts, leaf_of

        tls = self.report.observation.tls
        leaf = leaf_of(tls.chain) if isinstance(tls, TlsFacts) else None
        return leaf.subject if leaf else None


#: (column, its cell from one connection) of `pcap --csv`
PCAP_COLUMNS: tuple[tuple[str, Callable[[_Conn], Any]], ...] = (
    ("capture", lambda c: c.path),
    ("first_seen", lambda c: c.d["first_seen"]),
    ("transport", lambda c: c.conn.transport),
    ("client", lambda c: c.d["client"]),
    ("client_port", lambda c: c.d["client_port"]),
    ("server", lambda c: c.d["server"]),
    ("server_port", lambda c: c.d["server_port"]),
    ("cookie", lambda c: c.d["cookie"]),
    ("requested", lambda c: c.d["requested_name"]),
    ("answer", lambda c: c.answer),
    ("security_protocol", lambda c: c.z["security_protocol"]),
    ("result", lambda c: c.z["result"]),
    ("client_name", lambda c: c.z["client_name"]),
    ("client_build", lambda c: c.z["client_build"]),
    ("tls_version", lambda c: c.conn.tls_version),
    ("tls_cipher", lambda c: c.conn.tls_cipher),
    ("cert_subject", lambda c: c.cert_subject),
    ("end_reason", lambda c: c.conn.end_reason),
    ("ended_by", lambda c: c.conn.ended_by),
    ("duration_s", lambda c: c.d["duration_s"]),
    ("outcome", lambda c: c.report.outcome),
    ("worst", lambda c: str(c.report.worst)),
    ("finding_ids", lambda c: " ".join(f.id for f in c.report.findings)),
)


def pcap_csv_row(path: str, conn: RdpConnection, report: Report) -> list[str]:
    """The CSV cells of one connection of a capture."""
    from rdprobe.capture.zeek_names import zeek_fields

    row = _Conn(path, conn, report, conn.to_dict(), zeek_fields(conn))
    return [_text(cell(row)) for _, cell in PCAP_COLUMNS]


def write_pcap_csv(results: Iterable[tuple[str, RdpConnection, Report]], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(name for name, _ in PCAP_COLUMNS)
    for path, conn, report in results:
        writer.writerow(pcap_csv_row(path, conn, report))
