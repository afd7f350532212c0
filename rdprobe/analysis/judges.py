"""Judgement of the later stages' facts (TLS, TLS versions, NLA, MCS, UDP) into findings.

Pure functions of the JSON-ready facts in observation.stages and of ``now``, so a capture is
judged at its own time and the live probe at the probe's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.observations import TargetObservation

CLOCK_SKEW_LIMIT_S = 300  #: Kerberos' default maximum tolerance for computer clock synchronisation
AMPLIFICATION_LIMIT = 1.5
WEAK_RSA_BITS = 2048
WEAK_HASHES = {"md5", "sha1", "md2", "md4"}
OLD_TLS = ("TLSv1", "TLSv1.1")
OBSOLETE_CIPHER_MARKS = ("RC4", "3DES", "_DES_", "_NULL_", "EXPORT", "_ANON_")
CURRENT_CIPHER_MARKS = ("AES", "CHACHA20", "CAMELLIA", "ARIA")


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def judge_tls(obs: TargetObservation, now: datetime) -> list[Finding]:
    facts = obs.stages.get("tls")
    if not facts or "skipped" in facts:
        return []
    where = {"host": obs.host, "port": obs.port}
    chain, trust = facts.get("chain") or [], facts.get("trust") or {}
    out: list[Finding] = []
    if facts.get("error"):
        # the hand-built TLS 1.0 hello after a failed handshake: what the server offers
        fallback = facts.get("fallback") or {}
        cipher = fallback.get("cipher")
        if cipher and obsolete_cipher(cipher):
            out.append(
                finding(
                    "tls.obsolete_ciphers",
                    cipher=cipher,
                    cipher_code=fallback.get("cipher_code"),
                    version=fallback.get("version"),
                    error=facts["error"],
                    **where,
                )
            )
        else:
            out.append(finding("tls.handshake_failed", error=facts["error"], **where))
        chain, trust = fallback.get("chain") or [], fallback.get("trust") or {}
    if chain:
        out.extend(_judge_certificate(obs, chain[0], trust, where, now))
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
    leaf: dict[str, Any],
    trust: dict[str, Any],
    where: dict[str, Any],
    now: datetime,
) -> list[Finding]:
    """The leaf certificate's findings (the main handshake's, or the fallback hello's)."""
    ev = {
        **where,
        "subject": leaf.get("subject"),
        "issuer": leaf.get("issuer"),
        "thumbprint": leaf.get("sha1_thumbprint") or leaf.get("thumbprint"),
    }
    out: list[Finding] = []
    not_before, not_after = _time(leaf.get("not_before")), _time(leaf.get("not_after"))
    if not_after is not None and now > not_after:
        out.append(finding("cert.expired", not_after=leaf.get("not_after"), **ev))
    if not_before is not None and now < not_before:
        out.append(finding("cert.not_yet_valid", not_before=leaf.get("not_before"), **ev))
    if leaf.get("name_match") is False:
        fid = "cert.ip_target" if leaf.get("target_is_ip") else "cert.name_mismatch"
        out.append(
            finding(
                fid,
                target=obs.host,
                names=[*(leaf.get("san_dns") or []), *(leaf.get("san_ip") or [])],
                reason=leaf.get("name_match_reason"),
                **ev,
            )
        )
    self_signed = bool(leaf.get("self_signed"))
    if self_signed:
        out.append(finding("cert.self_signed", **ev))
    if trust.get("trusted") is False and (not self_signed or _domain_member(obs)):
        out.append(finding("cert.untrusted", reason=trust.get("reason"), **ev))
    if (leaf.get("key_type") or "").upper().startswith("RSA") and (
        leaf.get("key_bits") or WEAK_RSA_BITS
    ) < WEAK_RSA_BITS:
        out.append(
            finding("cert.weak_key", key_type=leaf["key_type"], key_bits=leaf["key_bits"], **ev)
        )
    if (leaf.get("signature_hash") or "").lower() in WEAK_HASHES:
        out.append(finding("cert.weak_signature", signature_hash=leaf["signature_hash"], **ev))
    if leaf.get("server_auth") is False:
        out.append(finding("cert.no_server_auth", eku=leaf.get("eku"), **ev))
    return out


def _domain_member(obs: TargetObservation) -> bool:
    """NLA named a DNS domain other than the computer itself: a CA-issued cert is expected."""
    ch = (obs.stages.get("nla") or {}).get("challenge") or {}
    domain, computer = ch.get("dns_domain"), ch.get("dns_computer")
    return bool(domain) and domain != computer and ch.get("nb_domain") != ch.get("nb_computer")


def judge_tls_versions(obs: TargetObservation, now: datetime) -> list[Finding]:
    facts = obs.stages.get("tls_versions")
    if not facts or "skipped" in facts:
        return []
    accepted = list(facts.get("accepted") or [])
    if not accepted:
        return []
    ev = {"host": obs.host, "port": obs.port, "matrix": facts.get("versions")}
    old = [v for v in accepted if v in OLD_TLS]
    if len(old) == len(accepted):
        return [finding("tls.old_versions_only", versions=" and ".join(old), **ev)]
    out = []
    if "TLSv1.2" not in accepted:
        out.append(finding("tls.no_tls12", **ev))
    if old:
        out.append(finding("tls.legacy_versions_enabled", versions=" and ".join(old), **ev))
    return out


def judge_nla(obs: TargetObservation, now: datetime) -> list[Finding]:
    facts = obs.stages.get("nla")
    if not facts or "skipped" in facts:
        return []
    where = {"host": obs.host, "port": obs.port}
    ch = facts.get("challenge")
    if not ch:
        return [finding("nla.failed", error=facts.get("error"), **where)]
    computer = ch.get("dns_computer") or ch.get("nb_computer") or ch.get("target_name")
    out = [
        finding(
            "nla.identity",
            computer=computer,
            nb_computer=ch.get("nb_computer"),
            nb_domain=ch.get("nb_domain"),
            dns_domain=ch.get("dns_domain"),
            dns_tree=ch.get("dns_tree"),
            version=ch.get("version"),
            os=facts.get("os"),
            tsrequest_version=facts.get("tsrequest_version"),
            **where,
        )
    ]
    server, seen = _time(ch.get("timestamp")), _time(facts.get("observed_at"))
    if server is not None and seen is not None:
        skew = round((server - seen).total_seconds())
        if abs(skew) > CLOCK_SKEW_LIMIT_S:
            out.append(
                finding(
                    "nla.clock_skew",
                    skew_s=skew,
                    server_time=ch.get("timestamp"),
                    local_time=facts.get("observed_at"),
                    **where,
                )
            )
    return out


def judge_mcs(obs: TargetObservation, now: datetime) -> list[Finding]:
    facts = obs.stages.get("mcs")
    if not facts or "skipped" in facts:
        return []
    where = {"host": obs.host, "port": obs.port}
    data = facts.get("server_data")
    if not data:
        if facts.get("request") == "no negotiation":
            # confirmed a client without RDP_NEG_REQ, then refused it: TLS is required
            return [finding("neg.legacy_clients_refused", error=facts.get("error"), **where)]
        return [finding("rdpsec.mcs_failed", error=facts.get("error"), **where)]
    sec = data.get("security") or {}
    out: list[Finding] = []
    if facts.get("selected_protocol", 0) == 0 and sec:
        ev = {
            **where,
            "encryption_method": sec.get("encryption_method_name"),
            "encryption_level": sec.get("encryption_level_name"),
        }
        out.append(finding("rdpsec.in_use", **ev))
        if sec.get("encryption_level") == 0 or sec.get("encryption_method") == 0:
            out.append(finding("rdpsec.no_encryption", **ev))
        verdict = facts.get("encryption_level") or {}
        if sec.get("encryption_level") in (1, 2):
            out.append(
                finding(
                    "rdpsec.low_level",
                    level=verdict.get("setting") or sec.get("encryption_level_name"),
                    **ev,
                )
            )
        methods = facts.get("methods") or {}
        weak = [
            name for name, m in methods.items() if m.get("accepted") and name in ("40BIT", "56BIT")
        ]
        if weak:
            out.append(finding("rdpsec.weak_methods", methods=", ".join(weak), **ev))
        cert = sec.get("certificate")
        problem = sec.get("certificate_error")
        if (
            problem is None
            and cert
            and cert.get("type") == "proprietary"
            and cert.get("verified") is False
        ):
            problem = "the signature does not verify with the Terminal Services key"
        if problem is None and not cert and sec.get("certificate_len"):
            problem = "it does not parse"
        if problem:
            out.append(
                finding("rdpsec.corrupt_certificate", reason=problem, certificate=cert, **ev)
            )
    return out


def judge_udp(obs: TargetObservation, now: datetime) -> list[Finding]:
    facts = obs.stages.get("udp")
    if not facts or facts.get("outcome") != "synack":
        return []
    ratio = facts.get("amplification") or 0
    ev = {
        "host": obs.host,
        "port": obs.port,
        "ratio": ratio,
        "bytes_sent": facts.get("bytes_sent"),
        "bytes_received": facts.get("bytes_received"),
    }
    out = [finding("udp.enabled", **ev)]
    if ratio > AMPLIFICATION_LIMIT:
        out.append(finding("udp.amplification", **ev))
    return out


STAGE_JUDGES: tuple[Callable[[TargetObservation, datetime], list[Finding]], ...] = (
    judge_tls,
    judge_tls_versions,
    judge_nla,
    judge_mcs,
    judge_udp,
)
