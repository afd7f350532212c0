"""A flat CSV form of the JSON rows (``rdprobe sweep --csv``): one line per target:port, flushed.

Columns: target, host, port, address, outcome, worst, security_layer, nla_required (true / false /
empty = not known), service (the non-RDP service's name), finding_ids (space separated), started.
"""

from __future__ import annotations

import csv
from typing import IO, Any

COLUMNS = (
    "target",
    "host",
    "port",
    "address",
    "outcome",
    "worst",
    "security_layer",
    "nla_required",
    "service",
    "finding_ids",
    "started",
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_row(row: dict[str, Any]) -> list[str]:
    """The CSV cells of one JSON row (``rdprobe.render.jsonl.report_dict``)."""
    setting = row.get("setting") or {}
    service = row.get("service") or {}
    findings = row.get("findings") or ()
    return [
        _text(row.get("target")),
        _text(row.get("host")),
        _text(row.get("port")),
        _text(row.get("address")),
        _text(row.get("outcome")),
        _text(row.get("worst")),
        _text(setting.get("security_layer")),
        _text(setting.get("nla_required")),
        _text(service.get("name")),
        " ".join(str(f.get("id")) for f in findings if isinstance(f, dict)),
        _text(row.get("started")),
    ]


class CsvWriter:
    """Writes rows to an open text file (opened with ``newline=''``), flushing each line."""

    def __init__(self, out: IO[str], *, header: bool = True) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        if header:
            self._writer.writerow(COLUMNS)
            out.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow(csv_row(row))
        self._out.flush()
