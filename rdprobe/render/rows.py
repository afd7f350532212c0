"""What the views of many results show of one JSON row: the table, CSV, HTML and `report`.

Rows come from files written by any rdprobe version (``check --json``, ``sweep -o``,
``pcap --json``; schema ``rdprobe.report/1`` or ``/2``), so every key is read defensively: a
missing or oddly typed value becomes "unknown", never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from rdprobe.analysis.severity import Severity
from rdprobe.defaults import TABLE_SORTS

#: Schemas this reader understands (the JSON row's ``schema`` key).
SCHEMAS = ("rdprobe.report/1", "rdprobe.report/2")
UNKNOWN = "-"
#: Orders of the table and the report: worst first, by target, or as the rows came.
SORTS = TABLE_SORTS  # in rdprobe.defaults: `check` checks --sort without loading this module


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any, default: str = UNKNOWN) -> str:
    return default if value is None or value == "" else str(value)


def severity(value: Any) -> Severity:
    try:
        return Severity[str(value).upper()]
    except KeyError:
        return Severity.INFO


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FindingView:
    id: str
    severity: Severity
    title: str
    cause: str
    fix: str
    confirm: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class RowView:
    """One target:port (or one captured connection) as the views show it."""

    target: str
    kind: str  #: "check" (check / sweep rows) or "pcap"
    outcome: str
    worst: Severity
    security: str  #: the security layer the listener is set to (Negotiate, SSL, RDP, ...)
    nla: str  #: "required", "optional", "not offered" or "-"
    tls: str  #: TLS versions accepted ("1.2 1.3"), or the one negotiated
    cert_not_after: datetime | None
    cert_subject: str
    os: str
    findings: tuple[FindingView, ...]
    started: datetime | None
    source: str  #: the file the row came from ("" when not from a file)
    row: dict[str, Any]

    @property
    def worst_finding(self) -> FindingView | None:
        return max(self.findings, key=lambda f: f.severity, default=None)

    @property
    def anchor(self) -> str:
        """An HTML id for the target's section (stable: from the target and the kind)."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{self.kind}-{self.target}").strip("-").lower()
        return slug or "target"

    def cert_days(self, now: datetime) -> int | None:
        if self.cert_not_after is None:
            return None
        return (self.cert_not_after - now).days

    @property
    def cert_expiry_text(self) -> str:
        return self.cert_expiry(datetime.now(UTC))

    def cert_expiry(self, now: datetime) -> str:
        days = self.cert_days(now)
        if days is None or self.cert_not_after is None:
            return UNKNOWN
        date = self.cert_not_after.date().isoformat()
        return f"{date} (expired)" if days < 0 else f"{date} ({days} d)"


def _finding(raw: Any) -> FindingView | None:
    if not isinstance(raw, dict):
        return None
    evidence = raw.get("evidence")
    return FindingView(
        id=_text(raw.get("id"), "unknown"),
        severity=severity(raw.get("severity")),
        title=_text(raw.get("title"), _text(raw.get("id"), "finding")),
        cause=_text(raw.get("cause"), ""),
        fix=_text(raw.get("fix"), ""),
        confirm=_text(raw.get("confirm"), ""),
        evidence=evidence if isinstance(evidence, dict) else {},
    )


def _nla(setting: Any) -> str:
    required = _get(setting, "nla_required")
    if required is True:
        return "required"
    if required is False:
        return "optional" if _get(setting, "nla_supported") else "not offered"
    return UNKNOWN


def _tls(stages: Any) -> str:
    accepted = _get(stages, "tls_versions", "accepted")
    if isinstance(accepted, list) and accepted:
        return " ".join(str(v).replace("TLSv", "") for v in accepted)
    version = _get(stages, "tls", "version")
    return _text(version).replace("TLSv", "")


def _os(row: dict[str, Any]) -> str:
    os_name = _get(row, "stages", "nla", "os")
    if os_name:
        return str(os_name)
    client = _get(row, "connection", "client_info", "client_build_name")
    return f"client {client}" if client else UNKNOWN


def view(row: dict[str, Any], source: str = "") -> RowView:
    """The view of one JSON row (a check, sweep or pcap row)."""
    raw_stages, raw_setting = row.get("stages"), row.get("setting")
    stages: dict[str, Any] = raw_stages if isinstance(raw_stages, dict) else {}
    setting: dict[str, Any] = raw_setting if isinstance(raw_setting, dict) else {}
    chain = _get(stages, "tls", "chain")
    leaf = chain[0] if isinstance(chain, list) and chain and isinstance(chain[0], dict) else {}
    findings = tuple(f for f in map(_finding, row.get("findings") or ()) if f is not None)
    target = row.get("target")
    if not target:
        host, port = row.get("host"), row.get("port")
        target = f"{host}:{port}" if host is not None else "unknown"
    worst = max((f.severity for f in findings), default=severity(row.get("worst")))
    return RowView(
        target=str(target),
        kind="pcap" if "connection" in row or "capture" in row else "check",
        outcome=_text(row.get("outcome"), "unknown"),
        worst=worst,
        security=_text(setting.get("security_layer")),
        nla=_nla(setting),
        tls=_tls(stages),
        cert_not_after=_when(leaf.get("not_after")),
        cert_subject=_text(leaf.get("subject"), ""),
        os=_os(row),
        findings=findings,
        started=_when(row.get("started")),
        source=source,
        row=row,
    )


def is_row(value: Any) -> bool:
    """A result row of rdprobe (any of SCHEMAS, or a future rdprobe.report/N)."""
    return isinstance(value, dict) and str(value.get("schema", "")).startswith("rdprobe.report/")


def read_rows(lines: Iterable[str]) -> Iterator[dict[str, Any] | None]:
    """Each line's row, or None for a line that is not an rdprobe row (blank lines skipped)."""
    for line in lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            yield None
            continue
        yield value if is_row(value) else None


def load(files: Iterable[tuple[str, IO[str]]]) -> tuple[list[RowView], int]:
    """(views of every row in the files, count of lines that were not rdprobe rows)."""
    views: list[RowView] = []
    bad = 0
    for name, handle in files:
        for row in read_rows(handle):
            if row is None:
                bad += 1
            else:
                views.append(view(row, name))
    return views, bad


def by_severity(views: Iterable[RowView]) -> list[RowView]:
    """Worst first; then by target, so equal rows keep a stable order."""
    return sorted(views, key=lambda v: (-v.worst, v.target))
