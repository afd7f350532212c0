"""Turn a TargetObservation into a Report: the target's outcome, its setting and its findings.

Pure: no I/O, no clock (``now`` is a parameter), so the live prober, the pcap reader and the tests
judge the same observation the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.observations import (
    Attempt,
    ReplyKind,
    ServiceGuess,
    TargetObservation,
    TcpOutcome,
)
from rdprobe.analysis.run_facts import STAGES
from rdprobe.analysis.severity import Severity

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

    from rdprobe.analysis.certificate_verdict import CertificateVerdict
    from rdprobe.analysis.setting import Setting
    from rdprobe.analysis.trust import TrustRoots

# What only some observations need loads with them, inside the functions below: the X.224
# judgement (rdp_answer, setting) when an attempt got a TPDU, the fingerprints when bytes came,
# the stage judges and the certificate verdict when a stage has facts, the consistency checker
# when CHECK_ENV asks for it. A refused port is judged with this module, findings and
# observations alone.

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


@dataclass(frozen=True)
class Report:
    """The judgement of one observation: what the renderers print and ``--json`` writes."""

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


def evidence_bytes(data: bytes, limit: int = 64) -> str:
    return data[:limit].hex() + ("..." if len(data) > limit else "")


def _attempt_failed(a: Attempt) -> bool:
    return a.tcp is not TcpOutcome.CONNECTED or a.reply_kind not in (None, ReplyKind.TPDU)


def _outcome(obs: TargetObservation) -> tuple[str, Attempt | None]:
    """The target's outcome and the attempt that best shows it."""
    if obs.dns_error is not None:
        return str(TcpOutcome.DNS_FAILURE), None
    if any(a.tpdu is not None for a in obs.attempts):
        from rdprobe.protocol.x224 import ConnectionConfirm

        confirm = next((a for a in obs.attempts if isinstance(a.tpdu, ConnectionConfirm)), None)
        if confirm is not None:
            return "rdp", confirm
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
    from rdprobe.analysis.fingerprint import identify

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


def classify(obs: TargetObservation, now: datetime, roots: TrustRoots | None = None) -> Report:
    """The report of one observation judged at ``now``; ``roots`` are the trust roots a checking
    client uses (None: trust is not judged). With RDPROBE_CHECK_CONSISTENCY=1 set, a report that
    contradicts itself raises AssertionError (``rdprobe.analysis.consistency``)."""
    outcome, key = _outcome(obs)
    findings: list[Finding] = []
    where: dict[str, Any] = {"host": obs.host, "port": obs.port}
    iso_payload: str | None = None
    setting: Setting | None = None
    if outcome == "rdp":
        from rdprobe.analysis import rdp_answer
        from rdprobe.analysis.setting import infer_setting

        iso_payload = rdp_answer.iso_not_rdp(obs)
        if iso_payload is not None:
            outcome = "x224_not_rdp"
        else:
            refused_later = rdp_answer.legacy_refused_later(obs)
            setting = infer_setting(obs.attempts, legacy_refused_later=refused_later)
    service: ServiceGuess | None = None

    if obs.dns_error is not None:
        findings.append(finding("dns.failure", error=obs.dns_error, **where))
    elif outcome == "x224_not_rdp":
        findings.append(finding("x224.not_rdp", payload=iso_payload, **where))
    elif outcome == "rdp":
        findings.append(finding("rdp.answered", **where))
        findings += rdp_answer.negotiation_findings(obs, setting)
    elif outcome == "wrong_service" or (
        key is not None and key.reply_kind in (ReplyKind.CLOSED, ReplyKind.RESET) and obs.direct_tls
    ):
        service = _service(obs, key)
        evidence = {**where, "first_bytes": evidence_bytes(key.reply if key else b"")}
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
            evidence["first_bytes"] = evidence_bytes(key.reply)
        if key.reply_kind is ReplyKind.OVERSIZED and len(key.reply) >= 4:
            evidence["length"] = int.from_bytes(key.reply[2:4], "big")
        if key.error:
            evidence["error"] = key.error
        findings.append(finding(_REPLY_FINDINGS[key.reply_kind], **evidence))

    findings += _intermittency(obs)
    findings += _stage_findings(obs, now, roots, outcome, findings)
    cert = None
    if obs.tls is not None:
        from rdprobe.analysis.certificate_verdict import tls_certificate_verdict
        from rdprobe.analysis.facts import TlsFacts

        if isinstance(obs.tls, TlsFacts):
            cert = tls_certificate_verdict(obs.tls, roots=roots, now=now, address=obs.address)
    report = Report(obs, outcome, setting, service, tuple(findings), now, cert)
    if os.environ.get(CHECK_ENV) == "1":
        from rdprobe.analysis.consistency import violations

        problems = violations(report)
        if problems:
            raise AssertionError(
                f"inconsistent report for {obs.host}:{obs.port}: " + "; ".join(problems)
            )
    return report


def _stage_findings(
    obs: TargetObservation,
    now: datetime,
    roots: TrustRoots | None,
    outcome: str,
    findings: list[Finding],
) -> list[Finding]:
    """The stage judges' findings (none when no stage ran: the judges are not even loaded)."""
    if all(getattr(obs, name) is None for name in STAGES):
        return []
    from rdprobe.analysis.judges import STAGE_JUDGES

    out: list[Finding] = []
    for judge in STAGE_JUDGES:
        for f in judge(obs, now, roots):
            if f.id in _SETTING_FINDINGS:
                # The setting speaks for these (it reads the MCS refusal itself); an MCS stage
                # that got no answer at all is a failed stage, not a refusal.
                if outcome == "rdp" and not any(g.id == f.id for g in (*findings, *out)):
                    f = finding("rdpsec.mcs_failed", **f.evidence)
                else:
                    continue
            if outcome == "x224_not_rdp" and f.id == "rdpsec.mcs_failed":
                continue  # x224.not_rdp names what came instead of MCS
            out.append(f)
    return out


def load_judges() -> None:
    """Import now what :func:`classify` loads only when an observation needs it. The live prober
    calls this before it opens connections: a sweep that runs out of file descriptors must not
    then fail to import a judge (EMFILE) in the middle of classifying a target."""
    from rdprobe.analysis import (  # noqa: F401
        certificate_verdict,
        facts,
        fingerprint,
        judges,
        rdp_answer,
        setting,
    )

    if os.environ.get(CHECK_ENV) == "1":
        from rdprobe.analysis import consistency  # noqa: F401


def _timeout(obs: TargetObservation) -> dict[str, Any]:
    t = obs.config.timeout_s
    return {"timeout_s": t} if t is not None else {}


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
