"""The JSON form of a Report: one object per target:port, schema documented in docs/json-schema.md."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import IO, Any

from rdprobe.analysis.classify import Report
from rdprobe.analysis.observations import Attempt
from rdprobe.analysis.setting import describe_answer
from rdprobe.protocol.endpoint import format_endpoint
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    DataTpdu,
    DisconnectRequest,
    NegotiationFailure,
    NegotiationResponse,
    protocol_name,
)

SCHEMA = "rdprobe.report/2"
#: Versions whose rows `merge` still reads (they differ only inside stages, docs/json-schema.md).
READABLE_SCHEMAS = frozenset({"rdprobe.report/1", SCHEMA})


def _tpdu_dict(a: Attempt) -> dict[str, Any] | None:
    t = a.tpdu
    if isinstance(t, ConnectionConfirm):
        out: dict[str, Any] = {
            "type": "confirm",
            "dst_ref": t.dst_ref,
            "src_ref": t.src_ref,
            "class": t.class_option,
        }
        neg = t.negotiation
        if isinstance(neg, NegotiationResponse):
            out["negotiation"] = {
                "type": "response",
                "selected": neg.selected,
                "selected_name": protocol_name(neg.selected),
                "flags": neg.flags,
                "flag_names": neg.flag_names,
            }
        elif isinstance(neg, NegotiationFailure):
            out["negotiation"] = {"type": "failure", "code": neg.code, "code_name": neg.code_name}
        else:
            out["negotiation"] = None
        return out
    if isinstance(t, DataTpdu):
        return {"type": "data", "user_data_hex": t.user_data.hex()}
    if isinstance(t, DisconnectRequest):
        return {"type": "disconnect", "reason": t.reason}
    return None


def attempt_dict(a: Attempt) -> dict[str, Any]:
    return {
        "label": a.label,
        "requested": a.requested,
        "tcp": str(a.tcp),
        "error": a.error,
        "connect_ms": a.connect_ms,
        "first_byte_ms": a.first_byte_ms,
        "reply_kind": str(a.reply_kind) if a.reply_kind else None,
        "reply_hex": a.reply[:256].hex(),
        "answer": describe_answer(a),
        "tpdu": _tpdu_dict(a),
    }


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def report_dict(report: Report) -> dict[str, Any]:
    obs = report.observation
    target = format_endpoint(obs.host, obs.port)
    return {
        "schema": SCHEMA,
        "target": target,
        "host": obs.host,
        "port": obs.port,
        "address": obs.address,
        "started": obs.started.isoformat(),
        "outcome": report.outcome,
        "worst": str(report.worst),
        "dns_error": obs.dns_error,
        "setting": report.setting.to_dict() if report.setting else None,
        "service": _plain(report.service) if report.service else None,
        "attempts": [attempt_dict(a) for a in obs.attempts],
        "repeat": _plain(obs.repeat) if obs.repeat else None,
        # the typed stage facts' JSON form; dumps() covers stragglers in evidence
        "stages": dict(obs.stages),
        "certificate": report.certificate.to_dict() if report.certificate else None,
        "findings": [f.to_dict() for f in report.findings],
    }


def _default(value: Any) -> Any:
    """What json cannot encode itself: bytes as hex, dataclasses as dicts, else str()."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(value)
    return str(value)


def dumps(row: dict[str, Any]) -> str:
    """One JSON Lines row (the one encoder of every command's JSON output). A row relayed from
    a sweep worker (rdprobe.sweep.workers.RelayedRow) carries the line this encoder made for
    it in the worker: that line is the row's encoding, so it is not made again."""
    line = getattr(row, "line", None)
    if line is not None:
        return str(line)
    return json.dumps(row, default=_default)


def write_jsonl(reports: list[Report], out: IO[str]) -> None:
    for r in reports:
        out.write(dumps(report_dict(r)) + "\n")
        out.flush()
