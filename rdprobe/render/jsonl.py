"""The JSON form of a Report: one object per target:port, schema documented in docs/json-schema.md."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields, is_dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from typing import IO, Any

from rdprobe.analysis.classify import Report, classify
from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
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


def report_line(report: Report) -> str:
    """``dumps(report_dict(report))``, the same bytes; a row where nothing listened (most rows of a
    sweep) is filled into the encoded row of its shape (LINES) instead of being built and encoded."""
    return line_and_row(report)[0]


def line_and_row(report: Report) -> tuple[str, dict[str, Any]]:
    """``report_line`` and a row for counting: ``report_dict(report)``, or for a filled line its
    shape's row, which differs from it only in the address, the start and the connect time."""
    filled = LINES.line(report)
    if filled is not None:
        return filled
    row = report_dict(report)
    return dumps(row), row


#: Stand-ins for what differs between rows of one shape: no finding text holds these.
_HOST = "192.0.2.213"
_STARTED = datetime(1999, 12, 31, 23, 59, 58, 123457, UTC)
_MS = 98765.4321
#: TargetObservation fields a no-listener row may have set (the rest must be at their defaults).
_SET = frozenset({"host", "port", "address", "started", "attempts", "config"})
_DEFAULTS = TargetObservation("", 0, None, _STARTED)


class _Lines:
    """Encoded rows of no-listener targets by shape, filled in with each target's values.

    A shape: one IPv4 address, one attempt that did not connect, nothing else observed; keyed by
    everything of the observation except the address, the start time and the connect time (the
    error text with the address taken out), and by the findings classify gave. The shape's row
    is made by the one classifier and encoder from a stand-in observation, and checked against
    the real row of the first target of the shape and of every VERIFY_EVERY-th after it: a shape
    whose filled row differs once is never filled again (its rows are built as any other).
    """

    VERIFY_EVERY = 1024
    LIMIT = 256  #: shapes kept (error texts differ by errno: a handful in practice)

    def __init__(self) -> None:
        self._shapes: dict[tuple[Any, ...], tuple[str, dict[str, Any]] | None] = {}
        self._uses = 0

    def line(self, report: Report) -> tuple[str, dict[str, Any]] | None:
        obs = report.observation
        host = obs.host
        if (
            report.setting is not None
            or report.service is not None
            or report.certificate is not None
            or len(obs.attempts) != 1
            or obs.address != host
            or not _dotted(host)
        ):
            return None
        a = obs.attempts[0]
        if (
            a.tcp is TcpOutcome.CONNECTED
            or a.reply
            or a.reply_kind is not None
            or a.tpdu is not None
            or a.first_byte_ms is not None
            or a.ended_by_server is not None
            or not _bare(obs)
        ):
            return None
        ms = a.connect_ms
        if ms is not None and not (type(ms) is float and math.isfinite(ms)):
            return None  # json writes what repr() would not (NaN, Infinity)
        error = a.error
        if error:
            if _HOST in error:
                return None  # the stand-in could not be told from the error's own text
            error = error.replace(host, _HOST)
        key = (obs.port, a.label, a.requested, a.tcp, error, a.connect_ms is None, obs.config,
               report.outcome, tuple(f.id for f in report.findings))  # fmt: skip
        if key not in self._shapes:
            if len(self._shapes) >= self.LIMIT:
                return None
            made = self._shapes[key] = self._make(report, error)
            if made is None or not self._verified(key, made, report):
                return None
        shape = self._shapes[key]
        if shape is None:
            return None  # a shape that did not fill right
        self._uses += 1
        if self._uses % self.VERIFY_EVERY == 0 and not self._verified(key, shape, report):
            return None
        return _fill(shape[0], report), shape[1]

    def _make(self, report: Report, error: str | None) -> tuple[str, dict[str, Any]] | None:
        """The encoded row of the stand-in for ``report``'s shape, as a str.format template
        (fields h: the address, s: the start time, m: the connect time)."""
        obs = report.observation
        a = obs.attempts[0]
        ms = _MS if a.connect_ms is not None else None
        stand_in = TargetObservation(_HOST, obs.port, _HOST, _STARTED)
        stand_in.config = obs.config
        stand_in.attempts.append(replace(a, error=error, connect_ms=ms))
        model = classify(stand_in, _STARTED)
        if model.outcome != report.outcome or [f.id for f in model.findings] != [
            f.id for f in report.findings
        ]:
            return None
        row = report_dict(model)
        text = dumps(row).replace("{", "{{").replace("}", "}}")
        for value, name in ((_HOST, "h"), (_STARTED.isoformat(), "s"), (repr(_MS), "m")):
            text = text.replace(value, "{" + name + "}")
        return text, row

    def _verified(
        self, key: tuple[Any, ...], shape: tuple[str, dict[str, Any]], report: Report
    ) -> bool:
        if _fill(shape[0], report) == dumps(report_dict(report)):
            return True
        self._shapes[key] = None
        return False


def _fill(template: str, report: Report) -> str:
    obs = report.observation
    return template.format(
        h=obs.host, s=obs.started.isoformat(), m=repr(obs.attempts[0].connect_ms)
    )


def _dotted(host: str) -> bool:
    return 7 <= len(host) <= 15 and host.replace(".", "").isdigit() and host.count(".") == 3


#: The fields of a TargetObservation a no-listener row leaves at their defaults, and those.
_REST = attrgetter(*(f.name for f in fields(TargetObservation) if f.name not in _SET))
_REST_DEFAULTS = _REST(_DEFAULTS)


def _bare(obs: TargetObservation) -> bool:
    """Nothing observed beyond the attempts (every other field at its default)."""
    return bool(_REST(obs) == _REST_DEFAULTS)


LINES = _Lines()


def write_jsonl(reports: list[Report], out: IO[str]) -> None:
    for r in reports:
        out.write(dumps(report_dict(r)) + "\n")
        out.flush()
