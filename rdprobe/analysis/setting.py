"""Infer the listener's security setting, in the admin's words, from the negotiation matrix.

Each X.224 attempt asked for one set of protocols; the answers together reveal the Security Layer
(RDP / Negotiate / SSL), whether NLA is required, and whether clients without negotiation get in.
Only answers count (MS-RDPBCGR 2.2.1.2): a reset, a close or a timeout says nothing about the
request it cut short, and one failure code speaks for its own request only, never for the matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rdprobe.analysis.observations import Attempt, ReplyKind
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
    protocol_name,
)

RDP, SSL, HYBRID, HYBRID_EX = Protocol.RDP, Protocol.SSL, Protocol.HYBRID, Protocol.HYBRID_EX
#: Replies that say nothing about the request: the connection broke or stayed silent.
_NO_ANSWER = (
    ReplyKind.RESET, ReplyKind.CLOSED, ReplyKind.SILENT, ReplyKind.TRUNCATED, ReplyKind.SLOW
)  # fmt: skip


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
    #: every kind of client was refused: RDP, TLS and NLA offers all got a negotiation failure
    accepts_nothing: bool = False
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
            "accepts_nothing": self.accepts_nothing,
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
    if attempt.reply_kind is ReplyKind.NOT_TPKT:  # the JSON keeps the kind; words for people
        return "not RDP: the reply lacks the TPKT header (03 00 + length) every RDP PDU has"
    if attempt.reply_kind in _NO_ANSWER:
        return f"no answer: {attempt.reply_kind}"
    if attempt.reply_kind is not None:
        return str(attempt.reply_kind)
    return f"no answer: {attempt.tcp}"


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


def _legacy_clients(attempts: list[Attempt], refused_later: str | None) -> bool | None:
    """Do clients that send no RDP_NEG_REQ get in? None when no such request was answered.

    A confirm without negotiation data, or one that selects PROTOCOL_RDP (FreeRDP answers so),
    lets them go on; a failure or a Disconnect / Data TPDU instead of a confirm refuses them; a
    reset, close or timeout is no answer at all. ``refused_later``: the MCS stage, run on that
    confirm, was refused (xrdp with security_layer=tls): the confirm does not let them in.
    """
    answered = [a for a in attempts if a.requested is None and a.tpdu is not None]
    if not answered:
        return None
    a = answered[0]
    if not isinstance(a.tpdu, ConnectionConfirm):
        return False
    neg = a.tpdu.negotiation
    if neg is None or (isinstance(neg, NegotiationResponse) and neg.selected == RDP):
        return refused_later is None
    return False


def _refuses_every_client(by_req: dict[int | None, Attempt]) -> bool:
    """Failures only, to requests offering Standard RDP Security, TLS and NLA alike."""
    if not by_req or any(_failure(a) is None for a in by_req.values()):
        return False
    offered = [req for req in by_req if req is not None]
    return (
        int(RDP) in offered
        and any(req & SSL for req in offered)
        and any(req & (HYBRID | HYBRID_EX) for req in offered)
    )


def infer_setting(
    attempts: Iterable[Attempt], *, legacy_refused_later: str | None = None
) -> Setting | None:
    """The server's setting, or None when no attempt got a Connection Confirm.

    ``legacy_refused_later``: why the MCS stage refused a client without negotiation after its
    confirm (None when it did not, or was not run).
    """
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
    # ... and only when no other confirm carried negotiation data: one odd confirm (a mutated or
    # cut one) must not outvote a server that negotiates on the other connections.
    negotiated = any(
        isinstance(a.tpdu, ConnectionConfirm) and a.tpdu.negotiation is not None
        for a in by_req.values()
    )
    legacy_server = not negotiated and any(
        _legacy_confirm(a) for req, a in by_req.items() if req is not None
    )
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

    legacy_clients = _legacy_clients(attempts, legacy_refused_later)
    accepts_nothing = _refuses_every_client(by_req)

    if accepts_nothing:
        layer = "unknown"
        codes = ", ".join(NegotiationFailure(c).code_name for c in failures)
        summary = f"accepts no client: every request was refused ({codes})"
    elif legacy_server:
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
    if legacy_clients is not None and not accepts_nothing:
        summary += "; clients without negotiation " + (
            "get a Connection Confirm"
            if legacy_clients
            else "refused after their Connection Confirm, at the MCS stage"
            if legacy_refused_later is not None
            else "refused"
        )
    nla_verdict: bool | None = nla_required if (failures or selections) else None
    if accepts_nothing:  # the failures contradict the offers: nothing more can be told from them
        nla_verdict = tls_supported = standard = nla_supported = None
    return Setting(
        security_layer=layer,
        nla_required=nla_verdict,
        tls_supported=tls_supported,
        standard_rdp_allowed=standard,
        nla_supported=nla_supported,
        hybrid_ex_supported=hybrid_ex,
        rdstls_supported=rdstls,
        legacy_clients_allowed=legacy_clients,
        legacy_server=legacy_server,
        summary=summary,
        accepts_nothing=accepts_nothing,
        answers=answers,
        failure_codes=failures,
    )
