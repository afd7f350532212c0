"""Read capture files and return the RDP connections in them, in constant memory per flow.

:func:`analyze` streams one file's records through :class:`~rdprobe.capture.flows.FlowTable`
with :class:`~rdprobe.capture.rdp.RdpHandler`; only flows whose first client bytes are an X.224
Connection Request are dissected, and each is dropped once its handshake is read. Damage in the
file (truncated tail, corrupt record header) ends the reading with a warning: the connections
before it are the partial result. A file that is no capture at all raises
:class:`~rdprobe.capture.records.CaptureError` (one-line message).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from rdprobe.analysis.classify import Report, classify
from rdprobe.analysis.findings import finding
from rdprobe.capture.connection import RdpConnection, to_observation
from rdprobe.capture.flows import FlowTable
from rdprobe.capture.rdp import RdpHandler
from rdprobe.capture.records import CaptureError, CaptureReader
from rdprobe.trust_store import load_trust_roots

__all__ = ["CaptureError", "analyze", "judge"]


def analyze(
    path: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    emit: Callable[[RdpConnection], None] | None = None,
) -> tuple[list[RdpConnection], list[str]]:
    """(connections in order of their first packet, warnings) for one capture file.

    ``host`` keeps connections with that client or server address, ``port`` those with that port
    on either side. With ``emit``, each connection is passed on as soon as it ends and the returned
    list is empty (nothing accumulates). Raises CaptureError when the file is no capture.
    """
    found: list[RdpConnection] = []
    handler = RdpHandler(emit or found.append, host=host, port=port)
    with CaptureReader(path) as reader:
        table = FlowTable(handler)
        table.process(reader)
        handler.finish_udp()
        warnings = list(reader.warnings)
        if reader.snaplen_cut:
            cut = sum(1 for c in found for _ in c.gaps)
            warnings.append(
                f"{reader.name}: {reader.snaplen_cut} packets were cut by the snaplen"
                + (f"; {cut} gaps in RDP streams" if cut else "")
            )
    found.sort(key=lambda c: c.first_ts)
    return found, warnings


def judge(conn: RdpConnection, now: datetime | None = None) -> Report:
    """The Report ``check`` would give for this connection, judged at the capture's time.

    What only a capture can show is said here, in the classifier's terms: an open port that got
    no request, a connection whose start the capture missed, X.224 that is not RDP (issue 9).
    """
    roots = load_trust_roots() if conn.certificates else None  # the system store
    report = classify(to_observation(conn), now or conn.started, roots)
    where = {"host": report.observation.host, "port": report.observation.port}
    if conn.transport == "udp":  # no X.224 attempt: name the outcome after the datagrams
        report = replace(
            report, outcome="rdp" if conn.udp_syn_ack or conn.start_missed else "silent"
        )
        if conn.start_missed:
            extra = finding("capture.start_missed", missed="the RDP-UDP SYN", **where)
            report = replace(report, findings=(extra, *report.findings))
        return report
    if conn.not_rdp is not None:  # ISO transport that is not RDP: the classifier's x224.not_rdp
        kept = tuple(
            f for f in report.findings if not f.id.startswith(("rdp.", "neg.", "x224.not_rdp"))
        )
        extra = finding("x224.not_rdp", payload=conn.not_rdp, **where)
        return replace(report, outcome="x224_not_rdp", setting=None, service=None,
                       findings=(extra, *kept))  # fmt: skip
    waits = {"tcp.timeout": ("syn", "last"), "tcp.silent": ("request_sent", "last")}
    if any(f.id in waits and "timeout_s" not in f.evidence for f in report.findings):
        # a capture has no timeout: the wait is how long the capture saw the client wait
        report = replace(report, findings=tuple(
            finding(f.id, **{**f.evidence, "timeout_s": round((conn.ms(*waits[f.id]) or 0) / 1000, 3)})
            if f.id in waits and "timeout_s" not in f.evidence else f
            for f in report.findings
        ))  # fmt: skip
    if conn.no_request or conn.start_missed:
        kept = tuple(f for f in report.findings if f.id != "tcp.open")
        if conn.no_request:
            extra = finding("capture.no_request", handshake=conn.handshake, ended_by=conn.ended_by,
                            end_reason=conn.end_reason, **where)  # fmt: skip
        else:
            extra = finding("capture.start_missed", missed="TCP handshake and X.224 negotiation",
                            **where)  # fmt: skip
        outcome = "rdp" if conn.start_missed else report.outcome
        report = replace(report, outcome=outcome, findings=(extra, *kept))
    return report
