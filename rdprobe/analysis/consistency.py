"""Does a report agree with itself? The invariants every report must hold, checked in one place.

``violations(report)`` lists each contradiction in one line (empty: consistent). With the
environment variable RDPROBE_CHECK_CONSISTENCY=1, ``classify()`` raises AssertionError on any, so
every report the test suite produces (live, capture, emulator, subprocesses) is checked.
Rules are pure functions of the report: add one by appending to ``RULES``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING

from rdprobe.analysis import severity
from rdprobe.analysis.certificate_verdict import judged_chain, parse_time
from rdprobe.analysis.consistency_rules import NEGOTIATION_RULES
from rdprobe.analysis.facts import TlsFacts, leaf_of
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol, protocol_name

if TYPE_CHECKING:
    from rdprobe.analysis.classify import Report

TLS_BASED = Protocol.SSL | Protocol.HYBRID | Protocol.HYBRID_EX
NLA_BASED = Protocol.HYBRID | Protocol.HYBRID_EX


def _ids(report: Report) -> set[str]:
    return {f.id for f in report.findings}


def _selections(report: Report) -> list[int]:
    """The protocol each confirm selected (0 for a legacy confirm without negotiation data)."""
    out = []
    for a in report.observation.attempts:
        if isinstance(a.tpdu, ConnectionConfirm):
            neg = a.tpdu.negotiation
            if isinstance(neg, NegotiationResponse):
                out.append(neg.selected)
            elif neg is None:
                out.append(0)
    return out


def nla_not_required_needs_a_non_nla_connection(report: Report) -> list[str]:
    """ "NLA is not required" needs a connection that got in without NLA: all selections being
    HYBRID/HYBRID_EX say the opposite (or, from one connection, nothing)."""
    selected = _selections(report)
    if "neg.nla_not_required" in _ids(report) and selected:
        if all(s & NLA_BASED for s in selected):
            names = ", ".join(protocol_name(s) for s in selected)
            return [f"'NLA not required' beside only NLA selections ({names})"]
    return []


def rdp_security_only_needs_no_tls_selection(report: Report) -> list[str]:
    """ "The server refuses TLS / RDP Security only" cannot stand beside a confirm selecting TLS."""
    tls = [s for s in _selections(report) if s & TLS_BASED]
    if "neg.rdp_security_only" in _ids(report) and tls:
        return [f"'RDP Security only' beside a TLS selection ({protocol_name(tls[0])})"]
    return []


def certificate_facts_agree_with_findings(report: Report) -> list[str]:
    """At the report's now: expired iff notAfter < now, not yet valid iff notBefore > now, and the
    report's certificate verdict says the same as its findings."""
    ids, out = _ids(report), []
    tls = report.observation.tls
    leaf = leaf_of(judged_chain(tls)[1]) if isinstance(tls, TlsFacts) else None
    cert_ids = {i for i in ids if i.startswith("cert.")}
    if leaf is None:
        if cert_ids:
            out.append(f"certificate findings {sorted(cert_ids)} without a certificate")
        return out
    if report.now is not None:
        now = report.now.astimezone(UTC)
        not_after, not_before = parse_time(leaf.not_after), parse_time(leaf.not_before)
        expired = not_after is not None and not_after < now
        early = not_before is not None and now < not_before
        if expired != ("cert.expired" in ids):
            out.append(f"notAfter {leaf.not_after} at {now.isoformat()} vs cert.expired")
        if early != ("cert.not_yet_valid" in ids):
            out.append(f"notBefore {leaf.not_before} at {now.isoformat()} vs cert.not_yet_valid")
    verdict = report.certificate
    if verdict is None:
        out.append("a certificate was judged but the report has no certificate verdict")
        return out
    if bool(verdict.expired) != ("cert.expired" in ids):
        out.append(f"certificate verdict expired={verdict.expired} vs the findings")
    if bool(verdict.not_yet_valid) != ("cert.not_yet_valid" in ids):
        out.append(f"certificate verdict not_yet_valid={verdict.not_yet_valid} vs the findings")
    mismatch = bool({"cert.name_mismatch", "cert.ip_target"} & ids)
    if (verdict.name_match is False) != mismatch:
        out.append(f"certificate verdict name_match={verdict.name_match} vs the findings")
    return out


#: the findings that say "a checking client will not trust this certificate"
UNTRUSTED_IDS = ("cert.untrusted", "cert.untrusted_here")


def trust_verdict_agrees_with_findings(report: Report) -> list[str]:
    """A trusted certificate has no untrusted finding; an untrusted one has exactly the one
    finding the single severity rule gives (``judges.untrusted_finding_id``: warning on a domain
    member, information elsewhere, whatever the cause: self-signed or an unknown CA)."""
    from rdprobe.analysis.judges import untrusted_finding_id

    verdict, tls = report.certificate, report.observation.tls
    leaf = leaf_of(judged_chain(tls)[1]) if isinstance(tls, TlsFacts) else None
    said = [i for i in UNTRUSTED_IDS if i in _ids(report)]
    if verdict is None or leaf is None:
        return [f"{said} without a judged certificate"] if said else []
    if verdict.trusted is True and said:
        return [f"a trusted certificate ({verdict.trust_reason}) beside {said}"]
    expected = untrusted_finding_id(report.observation, leaf, verdict)
    if expected is None:
        return [f"{said} beside trusted={verdict.trusted}"] if said else []
    if expected == "cert.self_signed":
        if said or "cert.self_signed" not in _ids(report):
            return [f"an untrusted self-signed certificate reported as {said or 'nothing'}"]
        return []
    if said != [expected]:
        return [f"an untrusted certificate reported as {said or 'nothing'}, not [{expected!r}]"]
    return []


def names_elsewhere_agrees_with_the_lookups(report: Report) -> list[str]:
    """'The certificate's names point elsewhere' iff the verdict says none of the resolved
    names points at the address probed."""
    verdict = report.certificate
    said = "cert.names_elsewhere" in _ids(report)
    elsewhere = verdict is not None and verdict.names_point_here is False
    if said != elsewhere:
        here = None if verdict is None else verdict.names_point_here
        return [
            f"names_point_here={here} vs cert.names_elsewhere {'present' if said else 'absent'}"
        ]
    return []


Rule = Callable[["Report"], list[str]]
RULES: tuple[Rule, ...] = (
    nla_not_required_needs_a_non_nla_connection,
    rdp_security_only_needs_no_tls_selection,
    certificate_facts_agree_with_findings,
    trust_verdict_agrees_with_findings,
    names_elsewhere_agrees_with_the_lookups,
    *NEGOTIATION_RULES,
)


def violations(report: Report, exit_code: int | None = None) -> list[str]:
    """Every contradiction in ``report``; with an exit code, also whether it is the one the
    worst finding gives (``rdprobe.analysis.severity.exit_code``)."""
    out = [problem for rule in RULES for problem in rule(report)]
    expected = int(severity.exit_code([(report.outcome, report.worst)]))
    if exit_code is not None and int(exit_code) != expected:
        out.append(
            f"exit code {int(exit_code)} but the worst finding ({report.worst}) gives {expected}"
        )
    return out
