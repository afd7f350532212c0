"""Self-consistency rules for the negotiation verdicts: a report must agree with itself.

Each rule takes a classified Report and returns the contradictions it finds, one sentence each
(empty when the report is consistent). The rules re-derive what they check from the wire facts
(the attempts) where they can, rather than trusting the setting they check. The one checker,
``rdprobe.analysis.consistency``, runs them (``NEGOTIATION_RULES``) with its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rdprobe.analysis.observations import Attempt
from rdprobe.analysis.severity import ExitCode, exit_code
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
)

if TYPE_CHECKING:  # classify imports the checker that imports these rules
    from rdprobe.analysis.classify import Report

_TLS = Protocol.SSL | Protocol.HYBRID | Protocol.HYBRID_EX | Protocol.RDSTLS
_NLA = Protocol.HYBRID | Protocol.HYBRID_EX
_LEGACY_ALLOWED = "clients without negotiation get a Connection Confirm"
_LEGACY_MENTION = "clients without negotiation"


def _ids(report: Report) -> list[str]:
    return [f.id for f in report.findings]


def _confirm(a: Attempt) -> ConnectionConfirm | None:
    return a.tpdu if isinstance(a.tpdu, ConnectionConfirm) else None


def _tls_selected(report: Report) -> list[str]:
    """Labels of the requests the server answered by selecting TLS, NLA or RDSTLS."""
    out = []
    for a in report.observation.attempts:
        cc = _confirm(a)
        if cc is not None and isinstance(cc.negotiation, NegotiationResponse):
            if cc.negotiation.selected & _TLS:
                out.append(a.label)
    return out


def rule_legacy_clients_one_voice(report: Report) -> list[str]:
    """The summary and the findings say the same about clients without negotiation, once."""
    s = report.setting
    refused = _ids(report).count("neg.legacy_clients_refused")
    out = []
    if refused > 1:
        out.append(f"neg.legacy_clients_refused raised {refused} times")
    if s is None:
        return out
    if refused and _LEGACY_ALLOWED in s.summary:
        out.append(f"summary says {_LEGACY_ALLOWED!r} beside neg.legacy_clients_refused")
    if refused and s.legacy_clients_allowed:
        out.append("legacy_clients_allowed is true beside neg.legacy_clients_refused")
    if s.legacy_clients_allowed is False and not refused and not s.accepts_nothing:
        out.append("legacy_clients_allowed is false but no neg.legacy_clients_refused")
    if s.legacy_clients_allowed is None and _LEGACY_MENTION in s.summary:
        out.append("summary judges clients without negotiation, the setting does not know")
    return out


def rule_setting_tls_beside_tls_selection(report: Report) -> list[str]:
    """The setting says no TLS (layer RDP, tls_supported false) only when no request got TLS.

    (The finding 'RDP Security only' beside a TLS selection is the checker's own rule.)
    """
    selected = _tls_selected(report)
    s = report.setting
    if selected and s is not None and (s.tls_supported is False or s.security_layer == "RDP"):
        return [
            f"setting says no TLS ({s.security_layer}, tls_supported={s.tls_supported}) beside "
            f"TLS selected for {', '.join(selected)}"
        ]
    return []


def _refuses_every_client(report: Report) -> bool:
    """From the attempts alone: confirms that are all failures, to RDP, TLS and NLA offers."""
    confirms = [(a.requested, c) for a in report.observation.attempts if (c := _confirm(a))]
    if not confirms or not all(isinstance(c.negotiation, NegotiationFailure) for _, c in confirms):
        return False
    offered = [req for req, _ in confirms if req is not None]
    return (
        int(Protocol.RDP) in offered
        and any(req & Protocol.SSL for req in offered)
        and any(req & _NLA for req in offered)
    )


def rule_accepting_nothing_is_a_problem(report: Report) -> list[str]:
    """A listener that refuses every kind of client never gets exit code 0 (rdp, worst < warning)."""
    if not _refuses_every_client(report):
        return []
    out = []
    if exit_code([(report.outcome, report.worst)]) is ExitCode.OK:
        out.append("every request refused, yet the report gives exit code 0")
    if report.setting is not None and not report.setting.accepts_nothing:
        out.append("every request refused, yet setting.accepts_nothing is false")
    return out


def rule_no_verdict_without_an_answer(report: Report) -> list[str]:
    """A request cut short by a reset, close or timeout gets no allowed / refused verdict."""
    s = report.setting
    if s is None:
        return []
    attempts = report.observation.attempts
    answered = {a.requested for a in attempts if a.tpdu is not None}
    silent = {a.requested for a in attempts if a.tpdu is None} - answered
    out = []
    if None in silent and s.legacy_clients_allowed is not None:
        out.append(
            f"no answer to the request without negotiation, yet legacy_clients_allowed="
            f"{s.legacy_clients_allowed}"
        )
    if s.legacy_server:  # a legacy server's verdicts come from any of its confirms
        return out
    nla_false = False if s.nla_supported is False else None  # True may come from other answers
    checks = (
        (int(Protocol.SSL | _NLA), "hybrid_ex_supported", s.hybrid_ex_supported),
        (int(Protocol.RDSTLS), "rdstls_supported", s.rdstls_supported),
        (int(Protocol.SSL | Protocol.HYBRID), "nla_supported", nla_false),
        (int(Protocol.RDP), "standard_rdp_allowed", s.standard_rdp_allowed),
    )
    for req, name, value in checks:
        if req in silent and value is not None:
            out.append(f"no answer to requestedProtocols {req}, yet {name}={value}")
    return out


def rule_rdp_answered_only_for_rdp(report: Report) -> list[str]:
    """'RDP answers' only when the outcome is RDP (not unknown bytes, not ISO transport)."""
    if "rdp.answered" in _ids(report) and not report.rdp:
        return [f"'RDP answers' with outcome {report.outcome}"]
    return []


NEGOTIATION_RULES: tuple[Callable[[Report], list[str]], ...] = (
    rule_legacy_clients_one_voice,
    rule_setting_tls_beside_tls_selection,
    rule_accepting_nothing_is_a_problem,
    rule_no_verdict_without_an_answer,
    rule_rdp_answered_only_for_rdp,
)


def contradictions(report: Report) -> list[str]:
    """Every contradiction the negotiation rules find in ``report``."""
    return [msg for rule in NEGOTIATION_RULES for msg in rule(report)]
