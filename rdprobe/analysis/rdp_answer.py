"""The judgement of a port that answered X.224: its negotiation findings and what the MCS stage
showed of it.

Apart from rdprobe.analysis.classify so that a port that never answered (refused, unreachable,
timed out: the common failure) is judged without loading the X.224 parser; the classifier loads
this module when an attempt got a TPDU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rdprobe.analysis.classify import evidence_bytes
from rdprobe.analysis.facts import McsFacts
from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.fingerprint import identify_iso_payload
from rdprobe.analysis.observations import TargetObservation
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
    protocol_name,
)

if TYPE_CHECKING:
    from rdprobe.analysis.setting import Setting

_FAILURE_FINDINGS = {
    FailureCode.SSL_CERT_NOT_ON_SERVER: "neg.ssl_cert_not_on_server",
    FailureCode.SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER: "neg.ssl_user_auth_required",
    FailureCode.INCONSISTENT_FLAGS: "neg.inconsistent_flags",
}


def _mcs_facts(obs: TargetObservation) -> tuple[str | None, str | None, bytes]:
    """(request label, error, reply bytes) of the MCS stage when it got no Connect Response.

    The one place the classifier reads the MCS stage's facts; all None / b"" when the stage was
    not run, was skipped, or got the server's Connect Response.
    """
    facts = obs.mcs
    if not isinstance(facts, McsFacts) or facts.server_data is not None:
        return None, None, b""
    try:
        raw = bytes.fromhex(facts.raw_hex)
    except ValueError:
        raw = b""
    return facts.request, facts.error or "no MCS Connect Response", raw


def legacy_refused_later(obs: TargetObservation) -> str | None:
    """Why a client without negotiation, confirmed, was then refused at the MCS stage."""
    request, error, _raw = _mcs_facts(obs)
    if request != "no negotiation" or error is None or "timeout" in error:
        return None  # a timeout is no answer
    return error


def iso_not_rdp(obs: TargetObservation) -> str | None:
    """What an X.224 listener that is not RDP sent instead of MCS, or None.

    Not RDP: no Connection Confirm carried RDP negotiation data (an RDP_NEG_REQ went unanswered
    or none was sent), and the answer to the MCS Connect Initial is ISO transport data that is
    not MCS (S7comm, an ISO session...).
    """
    if any(
        isinstance(a.tpdu, ConnectionConfirm) and a.tpdu.negotiation is not None
        for a in obs.attempts
    ):
        return None
    _request, _error, raw = _mcs_facts(obs)
    return identify_iso_payload(raw) if raw else None


def negotiation_findings(obs: TargetObservation, setting: Setting | None) -> list[Finding]:
    out: list[Finding] = []
    where = {"host": obs.host, "port": obs.port}
    if setting is not None:
        ev = {**where, "setting": setting.summary, "answers": setting.answers}
        if setting.accepts_nothing:
            codes = ", ".join(NegotiationFailure(c).code_name for c in setting.failure_codes)
            out.append(finding("neg.accepts_nothing", codes=codes, **ev))
        if setting.legacy_server:
            out.append(finding("neg.legacy_server", **ev))
        if setting.nla_required:
            out.append(finding("neg.nla_required", **ev))
        elif _only_nla_selected(obs):
            # NLA on every confirm: nothing shows a client getting in without it
            out.append(finding("neg.nla_used", **ev))
        elif setting.tls_supported or setting.standard_rdp_allowed:
            out.append(finding("neg.nla_not_required", **ev))
        if setting.security_layer == "SSL":
            out.append(finding("neg.tls_required", **ev))
        # TLS refused by the matrix as a whole (no request got TLS), not by one failure code:
        # FreeRDP answers an RDSTLS-only request SSL_NOT_ALLOWED_BY_SERVER and selects TLS else.
        if setting.tls_supported is False and not setting.legacy_server:
            out.append(finding("neg.rdp_security_only", **ev))
        if setting.legacy_clients_allowed is False and not setting.accepts_nothing:
            refused_later = legacy_refused_later(obs)
            if refused_later is not None:
                ev = {**ev, "error": refused_later, "stage": "mcs"}
            out.append(finding("neg.legacy_clients_refused", **ev))
        for code in setting.failure_codes:
            if code in _FAILURE_FINDINGS:
                out.append(finding(_FAILURE_FINDINGS[FailureCode(code)], **ev))
            elif code not in FailureCode._value2member_map_:
                out.append(finding("neg.unknown_failure", code=code, **ev))
    for a in obs.attempts:
        if a.ended_by_server is not None:
            out.append(
                finding(
                    "tcp.dropped_after_confirm", how=a.ended_by_server, requested=a.label, **where
                )
            )
        if a.tpdu is not None and not isinstance(a.tpdu, ConnectionConfirm):
            out.append(
                finding(
                    "x224.disconnect",
                    requested=a.label,
                    reply=evidence_bytes(a.reply),
                    **where,
                )
            )
        elif isinstance(a.tpdu, ConnectionConfirm) and a.requested is not None:
            neg = a.tpdu.negotiation
            if isinstance(neg, NegotiationResponse) and neg.selected & ~a.requested:
                out.append(
                    finding(
                        "x224.unrequested_protocol",
                        selected=protocol_name(neg.selected),
                        requested=protocol_name(a.requested),
                        **where,
                    )
                )
    return out


def _only_nla_selected(obs: TargetObservation) -> bool:
    """Every confirm selected HYBRID or HYBRID_EX (and none refused or went without)."""
    selected = []
    for a in obs.attempts:
        if isinstance(a.tpdu, ConnectionConfirm):
            neg = a.tpdu.negotiation
            selected.append(neg.selected if isinstance(neg, NegotiationResponse) else 0)
    return bool(selected) and all(s & (Protocol.HYBRID | Protocol.HYBRID_EX) for s in selected)
