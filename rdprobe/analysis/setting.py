"""Infer the listener's security setting, in the admin's words, from the negotiation matrix.

Each X.224 attempt asked for one set of protocols; the answers together reveal the Security Layer
(RDP / Negotiate / SSL), whether NLA is required, and whether clients without negotiation get in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rdprobe.analysis.observations import Attempt
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
    protocol_name,
)

RDP, SSL, HYBRID, HYBRID_EX = Protocol.RDP, Protocol.SSL, Protocol.HYBRID, Protocol.HYBRID_EX


@dataclass(frozen=True)
class Setting:
    security_layer: str  #: "RDP", "Negotiate", "SSL", "unknown"
    nla_required: bool | None
    tls_supported: bool | None
    standard_rdp_allowed: bool | None
    nla_supported: bool | None
    hybrid_ex_supported: bool | None
    rdstls_supported: bool | None
    legacy_clients_allowed: bool | None
    legacy_server: bool
    summary: str
    answers: dict[str, str] = field(default_factory=dict)  #: request label -> answer, readable
    failure_codes: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "security_layer": self.security_layer,
            "summary": self.summary,
            "nla_required": self.nla_required,
            "tls_supported": self.tls_supported,
            "standard_rdp_allowed": self.standard_rdp_allowed,
            "nla_supported": self.nla_supported,
            "hybrid_ex_supported": self.hybrid_ex_supported,
            "rdstls_supported": self.rdstls_supported,
            "legacy_clients_allowed": self.legacy_clients_allowed,
            "legacy_server": self.legacy_server,
            "answers": self.answers,
        }


def describe_answer(attempt: Attempt) -> str:
    """One line for what the server answered to this attempt."""
    tpdu = attempt.tpdu
    if isinstance(tpdu, ConnectionConfirm):
        neg = tpdu.negotiation
        if isinstance(neg, NegotiationResponse):
            short = [
                n.removesuffix("_SUPPORTED").removeprefix("NEGRSP_FLAG_") for n in neg.flag_names
            ]
            flags = f"flags 0x{neg.flags:02x}" + (f" {','.join(short)}" if short else "")
            return f"selected {protocol_name(neg.selected)} ({flags})"
        if isinstance(neg, NegotiationFailure):
            return f"failure {neg.code_name}"
        return "confirm without negotiation data"
    if tpdu is not None:
        return f"{type(tpdu).__name__} instead of a confirm"
    if attempt.reply_kind is not None:
        return str(attempt.reply_kind)
    return str(attempt.tcp)


def _selected(attempt: Attempt | None) -> int | None:
    if attempt is None or not isinstance(attempt.tpdu, ConnectionConfirm):
        return None
    neg = attempt.tpdu.negotiation
    return neg.selected if isinstance(neg, NegotiationResponse) else None


def _failure(attempt: Attempt | None) -> int | None:
    if attempt is None or not isinstance(attempt.tpdu, ConnectionConfirm):
        return None
    neg = attempt.tpdu.negotiation
    return neg.code if isinstance(neg, NegotiationFailure) else None


def _legacy_confirm(attempt: Attempt | None) -> bool:
    return (
        attempt is not None
        and isinstance(attempt.tpdu, ConnectionConfirm)
        and attempt.tpdu.negotiation is None
    )


def infer_setting(attempts: Iterable[Attempt]) -> Setting | None:
    """The server's setting, or None when no attempt got a Connection Confirm."""
    attempts = list(attempts)
    by_req: dict[int | None, Attempt] = {}
    for a in attempts:
        if isinstance(a.tpdu, ConnectionConfirm):
            by_req.setdefault(a.requested, a)
    if not by_req:
        return None
    answers = {a.label: describe_answer(a) for a in attempts}
    failures = tuple(sorted({c for a in by_req.values() if (c := _failure(a)) is not None}))
    selections = {a.requested: s for a in by_req.values() if (s := _selected(a)) is not None}

    # A server that gets RDP_NEG_REQ and still answers with no negotiation data predates it.
    legacy_server = any(_legacy_confirm(a) for req, a in by_req.items() if req is not None)
    nla_required = FailureCode.HYBRID_REQUIRED_BY_SERVER in failures
    tls_supported: bool | None = None
    if any(s & (SSL | HYBRID | HYBRID_EX) for s in selections.values()) or nla_required:
        tls_supported = True
    elif legacy_server or FailureCode.SSL_NOT_ALLOWED_BY_SERVER in failures:
        tls_supported = False
    elif any(req and req & SSL for req in selections):  # asked for TLS, got RDP
        tls_supported = False

    rdp_answer = by_req.get(int(RDP))
    standard: bool | None = None
    if legacy_server or _selected(rdp_answer) == RDP:
        standard = True
    elif _failure(rdp_answer) in (
        FailureCode.SSL_REQUIRED_BY_SERVER,
        FailureCode.HYBRID_REQUIRED_BY_SERVER,
        FailureCode.SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER,
    ):
        standard = False

    def supports(request: int, wanted: int) -> bool | None:
        if legacy_server:
            return False
        if request not in by_req:
            return None
        return _selected(by_req[request]) == wanted

    nla_supported = True if nla_required else supports(int(SSL | HYBRID), HYBRID)
    hybrid_ex = supports(int(SSL | HYBRID | HYBRID_EX), HYBRID_EX)
    rdstls = supports(int(Protocol.RDSTLS), Protocol.RDSTLS)
    if nla_supported is False and hybrid_ex:
        nla_supported = True

    legacy_clients: bool | None = None
    if None in by_req:
        legacy_clients = _legacy_confirm(by_req[None])
    elif any(a.requested is None for a in attempts):
        legacy_clients = False

    if legacy_server:
        layer, summary = "RDP", "RDP Security Layer only: legacy server without negotiation"
    elif nla_required:
        layer, summary = "Negotiate or SSL", "NLA required (CredSSP before the session)"
    elif standard and tls_supported:
        layer, summary = "Negotiate", "Negotiate: TLS or Standard RDP Security, NLA not required"
    elif tls_supported and standard is False:
        layer, summary = "SSL", "SSL: TLS required, NLA not required"
    elif standard and tls_supported is False:
        layer, summary = "RDP", "RDP Security Layer: Standard RDP Security only, no TLS"
    elif FailureCode.SSL_CERT_NOT_ON_SERVER in failures:
        layer, summary = "SSL or Negotiate", "TLS configured but no certificate on the listener"
    else:
        layer, summary = "unknown", "not enough answers to tell the security layer"
    if legacy_clients is not None:
        summary += "; clients without negotiation " + (
            "get a Connection Confirm" if legacy_clients else "refused"
        )
    return Setting(
        security_layer=layer,
        nla_required=nla_required if (failures or selections) else None,
        tls_supported=tls_supported,
        standard_rdp_allowed=standard,
        nla_supported=nla_supported,
        hybrid_ex_supported=hybrid_ex,
        rdstls_supported=rdstls,
        legacy_clients_allowed=legacy_clients,
        legacy_server=legacy_server,
        summary=summary,
        answers=answers,
        failure_codes=failures,
    )
