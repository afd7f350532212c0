"""Turn a TargetObservation into a Report: the target's outcome, its setting and its findings.

Pure: no I/O, no clock (``now`` is a parameter), so the live prober, the pcap reader and the tests
judge the same observation the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rdprobe.analysis.certificate_verdict import CertificateVerdict, tls_certificate_verdict
from rdprobe.analysis.consistency import violations
from rdprobe.analysis.facts import McsFacts, TlsFacts
from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.fingerprint import identify, identify_iso_payload
from rdprobe.analysis.judges import STAGE_JUDGES
from rdprobe.analysis.observations import (
    Attempt,
    ReplyKind,
    ServiceGuess,
    TargetObservation,
    TcpOutcome,
)
from rdprobe.analysis.setting import Setting, infer_setting
from rdprobe.analysis.severity import Severity
from rdprobe.analysis.trust import TrustRoots
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
    protocol_name,
)

#: Set to "1" (the test suite does) to check every report for contradictions as it is made.
CHECK_ENV = "RDPROBE_CHECK_CONSISTENCY"

_TCP_FINDINGS = {
    TcpOutcome.REFUSED: "tcp.refused",
    TcpOutcome.TIMEOUT: "tcp.timeout",
    TcpOutcome.HOST_UNREACHABLE: "tcp.host_unreachable",
    TcpOutcome.NET_UNREACHABLE: "tcp.net_unreachable",
    TcpOutcome.ADMIN_PROHIBITED: "tcp.admin_prohibited",
    TcpOutcome.DNS_FAILURE: "dns.failure",
    TcpOutcome.ERROR: "tcp.error",
}
_REPLY_FINDINGS = {
    ReplyKind.RESET: "tcp.reset_before_reply",
    ReplyKind.CLOSED: "tcp.closed_before_reply",
    ReplyKind.SILENT: "tcp.silent",
    ReplyKind.TRUNCATED: "x224.truncated",
    ReplyKind.SLOW: "x224.slow",
    ReplyKind.OVERSIZED: "x224.oversized",
    ReplyKind.MALFORMED: "x224.malformed",
}
#: Findings the setting speaks for: a stage judge does not raise them a second time.
_SETTING_FINDINGS = frozenset({"neg.legacy_clients_refused"})
_FAILURE_FINDINGS = {
    FailureCode.SSL_CERT_NOT_ON_SERVER: "neg.ssl_cert_not_on_server",
    FailureCode.SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER: "neg.ssl_user_auth_required",
    FailureCode.INCONSISTENT_FLAGS: "neg.inconsistent_flags",
}


@dataclass(frozen=True)
class Report:
    observation: TargetObservation
    #: "rdp", a TcpOutcome, a ReplyKind, "wrong_service" (a named service), "not_rdp" (unknown
    #: bytes) or "x224_not_rdp" (ISO transport that is not RDP)
    outcome: str
    setting: Setting | None
    service: ServiceGuess | None
    findings: tuple[Finding, ...]
    now: datetime | None = None  #: the time the report was judged at
    #: the leaf certificate's verdicts at ``now`` (validity, name match, trust)
    certificate: CertificateVerdict | None = None

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.INFO)

    @property
    def rdp(self) -> bool:
        return self.outcome == "rdp"


def _evidence_bytes(data: bytes, limit: int = 64) -> str:
    return data[:limit].hex() + ("..." if len(data) > limit else "")


def _attempt_failed(a: Attempt) -> bool:
    return a.tcp is not TcpOutcome.CONNECTED or a.reply_kind not in (None, ReplyKind.TPDU)


def _outcome(obs: TargetObservation) -> tuple[str, Attempt | None]:
    """The target's outcome and the attempt that best shows it."""
    if obs.dns_error is not None:
        return str(TcpOutcome.DNS_FAILURE), None
    if any(isinstance(a.tpdu, ConnectionConfirm) for a in obs.attempts):
        return "rdp", next(a for a in obs.attempts if isinstance(a.tpdu, ConnectionConfirm))
    for a in obs.attempts:
        if a.reply_kind is ReplyKind.NOT_TPKT:
            return "wrong_service", a
    if any(a.tpdu is not None for a in obs.attempts):
        return "rdp", next(a for a in obs.attempts if a.tpdu is not None)
    connected = [a for a in obs.attempts if a.tcp is TcpOutcome.CONNECTED]
    if connected and all(a.reply_kind is None for a in connected):
        return "open", connected[0]  # depth tcp: nothing was sent
    if connected:
        # A reply problem on an accepted connection: report the most telling one.
        order = [
            ReplyKind.OVERSIZED,
            ReplyKind.MALFORMED,
            ReplyKind.TRUNCATED,
            ReplyKind.SLOW,
            ReplyKind.RESET,
            ReplyKind.CLOSED,
            ReplyKind.SILENT,
        ]
        best = min(
            connected, key=lambda a: order.index(a.reply_kind) if a.reply_kind in order else 9
        )
        return str(best.reply_kind), best
    if obs.attempts:
        return str(obs.attempts[0].tcp), obs.attempts[0]
    return str(TcpOutcome.ERROR), None


def _service(obs: TargetObservation, attempt: Attempt | None) -> ServiceGuess | None:
    """What answers instead of RDP: the reply's fingerprint, refined by a direct TLS handshake."""
    guess = identify(attempt.reply) if attempt is not None and attempt.reply else None
    tls = obs.direct_tls
    if tls is not None:
        if (
            guess is None
            or guess.name in ("TLS", "unknown")
            or (guess.name == "HTTP" and tls.name == "HTTPS")
        ):
            return tls
    return guess


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


def _legacy_refused_later(obs: TargetObservation) -> str | None:
    """Why a client without negotiation, confirmed, was then refused at the MCS stage."""
    request, error, _raw = _mcs_facts(obs)
    if request != "no negotiation" or error is None or "timeout" in error:
        return None  # a timeout is no answer
    return error


def _iso_not_rdp(obs: TargetObservation) -> str | None:
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


def classify(obs: TargetObservation, now: datetime, roots: TrustRoots | None = None) -> Report:
    """The report of one observation judged at ``now``; ``roots`` are the trust roots a checking
    client uses (None: trust is not judged). With RDPROBE_CHECK_CONSISTENCY=1 set, a report that
    contradicts itself raises AssertionError (``rdprobe.analysis.consistency``)."""
    outcome, key = _outcome(obs)
    findings: list[Finding] = []
    where: dict[str, Any] = {"host": obs.host, "port": obs.port}
    iso_payload = _iso_not_rdp(obs) if outcome == "rdp" else None
    if iso_payload is not None:
        outcome = "x224_not_rdp"
    setting = (
        infer_setting(obs.attempts, legacy_refused_later=_legacy_refused_later(obs))
        if outcome == "rdp"
        else None
    )
    service: ServiceGuess | None = None

    if obs.dns_error is not None:
        findings.append(finding("dns.failure", error=obs.dns_error, **where))
    elif outcome == "x224_not_rdp":
        findings.append(finding("x224.not_rdp", payload=iso_payload, **where))
    elif outcome == "rdp":
        findings.append(finding("rdp.answered", **where))
        findings += _negotiation_findings(obs, setting)
    elif outcome == "wrong_service" or (
        key is not None and key.reply_kind in (ReplyKind.CLOSED, ReplyKind.RESET) and obs.direct_tls
    ):
        service = _service(obs, key)
        evidence = {**where, "first_bytes": _evidence_bytes(key.reply if key else b"")}
        if service is not None and service.name != "unknown":
            label = service.name + (f" ({service.detail})" if service.detail else "")
            findings.append(finding("service.conflict", service=label, **evidence))
            outcome = "wrong_service"
        else:
            shown = service.preview if service else ""
            findings.append(finding("service.unknown", preview=shown, **evidence))
            if outcome == "wrong_service":
                outcome = "not_rdp"  # unknown bytes are not a service banner
    elif outcome == "open":
        findings.append(finding("tcp.open", **where))
    elif key is not None and key.tcp is not TcpOutcome.CONNECTED:
        findings.append(finding(_TCP_FINDINGS[key.tcp], error=key.error, **where, **_timeout(obs)))
    elif key is not None and key.reply_kind in _REPLY_FINDINGS:
        evidence = {**where, **_timeout(obs), "received": len(key.reply)}
        if key.reply:
            evidence["first_bytes"] = _evidence_bytes(key.reply)
        if key.reply_kind is ReplyKind.OVERSIZED and len(key.reply) >= 4:
            evidence["length"] = int.from_bytes(key.reply[2:4], "big")
        if key.error:
            evidence["error"] = key.error
        findings.append(finding(_REPLY_FINDINGS[key.reply_kind], **evidence))

    findings += _intermittency(obs)
    for judge in STAGE_JUDGES:
        for f in judge(obs, now, roots):
            if f.id in _SETTING_FINDINGS:
                # The setting speaks for these (it reads the MCS refusal itself); an MCS stage
                # that got no answer at all is a failed stage, not a refusal.
                if outcome == "rdp" and not any(g.id == f.id for g in findings):
                    f = finding("rdpsec.mcs_failed", **f.evidence)
                else:
                    continue
            if outcome == "x224_not_rdp" and f.id == "rdpsec.mcs_failed":
                continue  # x224.not_rdp names what came instead of MCS
            findings.append(f)
    cert = (
        tls_certificate_verdict(obs.tls, roots=roots, now=now, address=obs.address)
        if isinstance(obs.tls, TlsFacts)
        else None
    )
    report = Report(obs, outcome, setting, service, tuple(findings), now, cert)
    if os.environ.get(CHECK_ENV) == "1":
        problems = violations(report)
        if problems:
            raise AssertionError(
                f"inconsistent report for {obs.host}:{obs.port}: " + "; ".join(problems)
            )
    return report


def _timeout(obs: TargetObservation) -> dict[str, Any]:
    t = obs.config.timeout_s
    return {"timeout_s": t} if t is not None else {}


def _negotiation_findings(obs: TargetObservation, setting: Setting | None) -> list[Finding]:
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
            refused_later = _legacy_refused_later(obs)
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
                    reply=_evidence_bytes(a.reply),
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


def _intermittency(obs: TargetObservation) -> list[Finding]:
    """Some connections answered and some failed: a busy or flapping listener."""
    if obs.repeat is not None:
        ok = obs.repeat.outcomes.get("rdp", 0)
        failures = obs.repeat.tries - ok
        if ok and failures:
            return [
                finding(
                    "tcp.intermittent",
                    failures=failures,
                    tries=obs.repeat.tries,
                    outcomes=obs.repeat.outcomes,
                    host=obs.host,
                    port=obs.port,
                )
            ]
    answered = [a for a in obs.attempts if a.tpdu is not None]
    failed = [a for a in obs.attempts if _attempt_failed(a)]
    if answered and failed:
        return [
            finding(
                "tcp.intermittent",
                failures=len(failed),
                tries=len(obs.attempts),
                outcomes={a.label: str(a.reply_kind or a.tcp) for a in failed},
                host=obs.host,
                port=obs.port,
            )
        ]
    return []
