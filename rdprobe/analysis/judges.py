"""Judgement of the later stages' facts (TLS, TLS versions, NLA, MCS, UDP) into findings.

Pure functions of the typed facts (``rdprobe.analysis.facts``), of ``now`` and of the trust roots
given, so a capture is judged at its own time and the live probe at the probe's. A stage that did
not run (None) or produced no facts (StageNote) gives no finding here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rdprobe.analysis.alerts import alert_finding
from rdprobe.analysis.certificate_verdict import (
    CertificateVerdict,
    judged_chain,
    parse_time,
    tls_certificate_verdict,
)
from rdprobe.analysis.facts import (
    CertificateFacts,
    CertificateUnreadable,
    McsFacts,
    NlaFacts,
    TlsFacts,
    TlsVersionsFacts,
    UdpFacts,
    leaf_of,
)
from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.observations import TargetObservation
from rdprobe.analysis.session_facts import SessionFacts
from rdprobe.analysis.session_judge import judge_session
from rdprobe.analysis.trust import TrustRoots
from rdprobe.protocol.rdpsec import ProprietaryCertificate

CLOCK_SKEW_LIMIT_S = 300  #: Kerberos' default maximum tolerance for computer clock synchronisation
AMPLIFICATION_LIMIT = 1.5
WEAK_RSA_BITS = 2048
#: A certificate this close to its end is a warning (cert.expiring_soon), closer than INFO info.
EXPIRY_WARNING = timedelta(days=30)
EXPIRY_INFO = timedelta(days=90)
WEAK_HASHES = {"md5", "sha1", "md2", "md4"}
OLD_TLS = ("TLSv1", "TLSv1.1")
OBSOLETE_CIPHER_MARKS = ("RC4", "3DES", "_DES_", "_NULL_", "EXPORT", "_ANON_")
CURRENT_CIPHER_MARKS = ("AES", "CHACHA20", "CAMELLIA", "ARIA")


def judge_tls(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    facts = obs.tls
    if not isinstance(facts, TlsFacts):
        return []
    where = {"host": obs.host, "port": obs.port}
    out: list[Finding] = []
    if facts.error:
        # the hand-built TLS 1.0 hello after a failed handshake: what the server offers
        fallback = facts.fallback
        cipher = fallback.cipher if fallback else None
        if fallback is not None and cipher and obsolete_cipher(cipher):
            out.append(
                finding(
                    "tls.obsolete_ciphers",
                    cipher=cipher,
                    cipher_code=None
                    if fallback.cipher_code is None
                    else f"0x{fallback.cipher_code:04x}",
                    version=fallback.version,
                    error=facts.error,
                    **where,
                )
            )
        elif facts.alert is not None:
            out.append(alert_finding(facts.alert, facts, where))
        else:
            out.append(finding("tls.handshake_failed", error=facts.error, **where))
    _source, chain = judged_chain(facts)
    for bad in chain:  # what no certificate library could read (issue 14): a finding, no crash
        if isinstance(bad, CertificateUnreadable) and bad.sha256 is not None:
            out.append(
                finding("tls.unreadable_certificate", size=bad.size, digest=bad.sha256, error=bad.error,
                        **where)
            )  # fmt: skip
    leaf = leaf_of(chain)
    if leaf is not None:
        out.extend(_judge_certificate(obs, facts, leaf, roots, where, now))
    return out


def obsolete_cipher(name: str) -> bool:
    """RC4, 3DES, single DES, NULL and export suites, or one that is not a current AEAD/AES
    cipher at all (a name tlsrec does not know)."""
    upper = name.upper()
    if any(bad in upper for bad in OBSOLETE_CIPHER_MARKS):
        return True
    return not any(good in upper for good in CURRENT_CIPHER_MARKS)


def _judge_certificate(
    obs: TargetObservation,
    tls: TlsFacts,
    leaf: CertificateFacts,
    roots: TrustRoots | None,
    where: dict[str, Any],
    now: datetime,
) -> list[Finding]:
    """The leaf certificate's findings (the main handshake's, or the fallback hello's)."""
    verdict = tls_certificate_verdict(tls, roots=roots, now=now, address=obs.address)
    assert verdict is not None  # a leaf exists
    ev = {
        **where,
        "subject": leaf.subject,
        "issuer": leaf.issuer,
        "thumbprint": leaf.sha1_thumbprint,
    }
    out: list[Finding] = []
    not_after = parse_time(leaf.not_after)
    if verdict.expired:
        out.append(finding("cert.expired", not_after=leaf.not_after, **ev))
    elif not_after is not None and not_after - now < EXPIRY_INFO:
        fid = "cert.expiring_soon" if not_after - now < EXPIRY_WARNING else "cert.expiring"
        expires = not_after.date().isoformat()
        out.append(finding(fid, days_left=(not_after - now).days, expires=expires, **ev))
    if verdict.not_yet_valid:
        out.append(finding("cert.not_yet_valid", not_before=leaf.not_before, **ev))
    if verdict.name_match is False:
        out.extend(_name_findings(obs, tls, leaf, verdict, ev))
    if leaf.self_signed:
        out.append(finding("cert.self_signed", **ev))
    trust_id = untrusted_finding_id(obs, leaf, verdict)
    if trust_id is not None and trust_id != "cert.self_signed":
        out.append(
            finding(
                trust_id,
                reason=verdict.trust_reason,
                verdict=verdict.trust_verdict or verdict.trust_reason,
                store=verdict.trust_store or "the trust store",
                **ev,
            )
        )
    if (leaf.key_type or "").upper().startswith("RSA") and (
        leaf.key_bits or WEAK_RSA_BITS
    ) < WEAK_RSA_BITS:
        out.append(finding("cert.weak_key", key_type=leaf.key_type, key_bits=leaf.key_bits, **ev))
    if (leaf.signature_hash or "").lower() in WEAK_HASHES:
        out.append(finding("cert.weak_signature", signature_hash=leaf.signature_hash, **ev))
    if leaf.server_auth is False:
        out.append(
            finding("cert.no_server_auth", eku=list(leaf.eku) if leaf.eku else leaf.eku, **ev)
        )
    return out


def certificate_names(leaf: CertificateFacts) -> list[str]:
    """The names a client matches (RFC 6125 §6.4): the subjectAltName, else the subject CN."""
    names = [*leaf.san_dns, *leaf.san_ip]
    return names or ([leaf.subject_cn] if leaf.subject_cn else [])


def _name_findings(
    obs: TargetObservation,
    tls: TlsFacts,
    leaf: CertificateFacts,
    verdict: CertificateVerdict,
    ev: dict[str, Any],
) -> list[Finding]:
    """Name mismatch as the client says it (the names listed), and where the names point."""
    names = certificate_names(leaf)
    lookups = {n.name: list(n.addresses) for n in tls.name_lookups}
    here = verdict.names_point_here
    lookup_text = f" ({verdict.names_point_reason}: connect by that name)" if here else ""
    fid = "cert.ip_target" if verdict.target_is_ip else "cert.name_mismatch"
    common = {"names": names, "names_text": ", ".join(names) or "none", **ev}
    out = [
        finding(
            fid,
            target=obs.host,
            reason=verdict.name_match_reason,
            lookup_text=lookup_text,
            lookups=lookups,
            names_point_here=here,
            **common,
        )
    ]
    if here is False:
        where = "; ".join(f"{n} -> {', '.join(a)}" for n, a in lookups.items() if a)
        out.append(
            finding(
                "cert.names_elsewhere",
                address=obs.address,
                where=where,
                reason=verdict.names_point_reason,
                lookups=lookups,
                **common,
            )
        )
    return out


def untrusted_finding_id(
    obs: TargetObservation, leaf: CertificateFacts, verdict: CertificateVerdict
) -> str | None:
    """The one finding that says a checking client will not trust the certificate, or None.

    One rule for every cause (self-signed, an unknown CA, an incomplete chain): the severity
    follows what the server is expected to have, not why the chain fails. On a domain member a
    certificate the clients trust is expected, so an untrusted one is ``cert.untrusted``
    (warning) whatever the cause; elsewhere (a workgroup server, or membership unknown) clients
    warn on first connection as designed, so it is information: ``cert.self_signed`` for
    Windows' own self-signed certificate, ``cert.untrusted_here`` for any other. Without trust
    roots nothing is judged (None).
    """
    if verdict.trusted is not False:
        return None
    if domain_member(obs):
        return "cert.untrusted"
    return "cert.self_signed" if leaf.self_signed else "cert.untrusted_here"


def domain_member(obs: TargetObservation) -> bool:
    """NLA named a DNS domain other than the computer itself: a CA-issued cert is expected."""
    ch = obs.nla.challenge if isinstance(obs.nla, NlaFacts) else None
    if ch is None:
        return False
    domain, computer = ch.dns_domain, ch.dns_computer
    return bool(domain) and domain != computer and ch.nb_domain != ch.nb_computer


def judge_tls_versions(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    facts = obs.tls_versions
    if not isinstance(facts, TlsVersionsFacts):
        return []
    accepted = facts.accepted
    if not accepted:
        return []
    ev = {"host": obs.host, "port": obs.port, "matrix": dict(facts.versions)}
    old = [v for v in accepted if v in OLD_TLS]
    if len(old) == len(accepted):
        return [finding("tls.old_versions_only", versions=" and ".join(old), **ev)]
    out = []
    if "TLSv1.2" not in accepted:
        out.append(finding("tls.no_tls12", **ev))
    if old:
        out.append(finding("tls.legacy_versions_enabled", versions=" and ".join(old), **ev))
    return out


def judge_nla(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    facts = obs.nla
    if not isinstance(facts, NlaFacts):
        return []
    where = {"host": obs.host, "port": obs.port}
    ch = facts.challenge
    if ch is None:
        return [finding("nla.failed", error=facts.error, **where)]
    computer = ch.dns_computer or ch.nb_computer or ch.target_name
    out = [
        finding(
            "nla.identity",
            computer=computer,
            nb_computer=ch.nb_computer,
            nb_domain=ch.nb_domain,
            dns_domain=ch.dns_domain,
            dns_tree=ch.dns_tree,
            version=ch.version_text,
            os=facts.os,
            tsrequest_version=facts.tsrequest_version,
            **where,
        )
    ]
    # the local clock when the challenge arrived; without it (facts from elsewhere), the
    # report's own time (a capture's time for pcaps)
    server, seen = ch.timestamp, facts.observed_at or now
    if server is not None:
        skew = round((server - seen).total_seconds())
        if abs(skew) > CLOCK_SKEW_LIMIT_S:
            out.append(
                finding(
                    "nla.clock_skew",
                    skew_s=skew,
                    server_time=server.isoformat(),
                    local_time=seen.isoformat(),
                    **where,
                )
            )
    return out


def judge_mcs(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    facts = obs.mcs
    if not isinstance(facts, McsFacts):
        return []
    where = {"host": obs.host, "port": obs.port}
    data = facts.server_data
    if data is None:
        if facts.request == "no negotiation":
            # confirmed a client without RDP_NEG_REQ, then refused it: TLS is required
            return [finding("neg.legacy_clients_refused", error=facts.error, **where)]
        return [finding("rdpsec.mcs_failed", error=facts.error, **where)]
    sec = data.security
    out: list[Finding] = []
    if facts.selected_protocol == 0 and sec is not None:
        ev = {
            **where,
            "encryption_method": sec.method_name,
            "encryption_level": sec.level_name,
        }
        out.append(finding("rdpsec.in_use", **ev))
        if sec.encryption_level == 0 or sec.encryption_method == 0:
            out.append(finding("rdpsec.no_encryption", **ev))
        verdict = facts.encryption_level
        if sec.encryption_level in (1, 2):
            out.append(
                finding(
                    "rdpsec.low_level",
                    level=verdict.setting if verdict else sec.level_name,
                    **ev,
                )
            )
        weak = [
            name for name, m in facts.methods.items() if m.accepted and name in ("40BIT", "56BIT")
        ]
        if weak:
            out.append(finding("rdpsec.weak_methods", methods=", ".join(weak), **ev))
        cert = sec.certificate
        problem = sec.certificate_error
        if problem is None and isinstance(cert, ProprietaryCertificate) and cert.verified is False:
            problem = "the signature does not verify with the Terminal Services key"
        if problem is None and cert is None and sec.certificate_bytes:
            problem = "it does not parse"
        if problem:
            out.append(
                finding(
                    "rdpsec.corrupt_certificate",
                    reason=problem,
                    certificate=cert.to_dict() if cert else None,
                    **ev,
                )
            )
    return out


def judge_session_stage(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    """The walk to the logon screen (rdprobe.analysis.session_judge holds the rules)."""
    facts = obs.session
    if not isinstance(facts, SessionFacts):
        return []
    return judge_session(facts, now)


def judge_udp(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    facts = obs.udp
    if not isinstance(facts, UdpFacts) or facts.outcome != "synack":
        return []
    ratio = facts.amplification or 0
    ev = {
        "host": obs.host,
        "port": obs.port,
        "ratio": ratio,
        "bytes_sent": facts.bytes_sent,
        "bytes_received": facts.bytes_received,
    }
    out = [finding("udp.enabled", **ev)]
    if ratio > AMPLIFICATION_LIMIT:
        out.append(finding("udp.amplification", **ev))
    return out


from rdprobe.analysis.auth_judge import judge_auth  # noqa: E402  (check --user)

Judge = Callable[[TargetObservation, datetime, TrustRoots | None], list[Finding]]
#: One judge per stage, in STAGES order.
STAGE_JUDGES: tuple[Judge, ...] = (
    judge_tls,
    judge_tls_versions,
    judge_nla,
    judge_mcs,
    judge_session_stage,
    judge_udp,
    judge_auth,
)
