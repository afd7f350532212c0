"""Judgement of stage facts: pure functions of the facts and of the time they are judged at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rdprobe.analysis.encryption_level import MethodOutcome
from rdprobe.analysis.facts import (
    CertificateFacts,
    McsFacts,
    NlaFacts,
    TlsFacts,
    TlsVersionsFacts,
    UdpFacts,
)
from rdprobe.analysis.judges import judge_mcs, judge_nla, judge_tls, judge_tls_versions, judge_udp
from rdprobe.analysis.observations import TargetObservation
from rdprobe.analysis.severity import Severity
from rdprobe.analysis.trust import TrustRoots
from rdprobe.protocol.gcc_server import ServerData, ServerSecurity
from rdprobe.protocol.ntlm import NegotiateFlags, NtlmChallenge
from rdprobe.protocol.rdpsec import ProprietaryCertificate

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TARGET = "srv.example.test"
#: a store that trusts nothing: every chain judged with it is untrusted
NO_ROOTS = TrustRoots((), "an empty test store")


def obs_with(**stages) -> TargetObservation:
    obs = TargetObservation(TARGET, 3389, "127.0.0.1", NOW)
    for name, facts in stages.items():
        setattr(obs, name, facts)
    return obs


def challenge(**kw) -> NtlmChallenge:
    return NtlmChallenge("", NegotiateFlags(0), b"\0" * 8, None, **kw)


def nla(ch: NtlmChallenge | None, error: str | None = None) -> NlaFacts:
    return NlaFacts("HYBRID", ch, 6 if ch else None, error, observed_at=NOW)


def ids(findings) -> set[str]:
    return {f.id for f in findings}


@pytest.mark.parametrize(
    ("skew_s", "flagged"), [(0, False), (299, False), (301, True), (-3600, True)]
)
def test_clock_skew_over_five_minutes(skew_s, flagged):
    facts = nla(challenge(dns_computer="WIN10CGR", timestamp=NOW + timedelta(seconds=skew_s)))
    found = judge_nla(obs_with(nla=facts), NOW)
    assert ("nla.clock_skew" in ids(found)) is flagged
    assert "nla.identity" in ids(found)
    if flagged:
        f = next(f for f in found if f.id == "nla.clock_skew")
        assert f.evidence["skew_s"] == skew_s


def test_clock_skew_without_an_observation_time_is_judged_at_now():
    ch = challenge(dns_computer="WIN10CGR", timestamp=NOW + timedelta(hours=1))
    facts = NlaFacts("HYBRID", ch, 6, None)  # no observed_at
    assert "nla.clock_skew" in ids(judge_nla(obs_with(nla=facts), NOW))
    assert "nla.clock_skew" not in ids(judge_nla(obs_with(nla=facts), NOW + timedelta(hours=1)))


def test_nla_without_challenge_is_a_failure():
    assert ids(judge_nla(obs_with(nla=nla(None, "garbage")), NOW)) == {"nla.failed"}


def leaf(**kw) -> CertificateFacts:
    base = {
        "subject": "CN=srv", "issuer": "CN=srv", "subject_cn": "srv", "san_dns": (TARGET,),
        "san_ip": (), "serial": "1", "not_before": (NOW - timedelta(days=10)).isoformat(),
        "not_after": (NOW + timedelta(days=400)).isoformat(), "self_signed": False,
        "key_type": "RSA", "key_bits": 2048, "signature_algorithm_oid": "1.2.840.113549.1.1.11",
        "signature_hash": "sha256", "eku": ("serverAuth",), "server_auth": True,
        "sha1_thumbprint": "AB" * 20, "sha1_thumbprint_dialog": "ab " * 19 + "ab",
        "sha256_fingerprint": "cd" * 32, "der": b"\x30\x00",
    }  # fmt: skip
    return CertificateFacts(**{**base, **kw})


def tls(*chain, target=TARGET, error=None, fallback=None) -> TlsFacts:
    return TlsFacts("SSL", "SSL", "TLSv1.2", "X", 128, error, chain, target, fallback)


@pytest.mark.parametrize(
    ("cert", "judged_at", "expect"),
    [
        (leaf(), NOW, set()),
        (leaf(), NOW + timedelta(days=401), {"cert.expired"}),  # the same certificate, later
        (leaf(), NOW + timedelta(days=371), {"cert.expiring_soon"}),  # 29 days left: warning
        (leaf(), NOW + timedelta(days=311), {"cert.expiring"}),  # 89 days left: info
        (leaf(), NOW + timedelta(days=309), set()),  # 91 days left
        (leaf(), NOW - timedelta(days=11), {"cert.not_yet_valid"}),
        (leaf(san_dns=("other.example.test",)), NOW, {"cert.name_mismatch"}),
        (leaf(key_bits=1024), NOW, {"cert.weak_key"}),
        (leaf(signature_hash="sha1"), NOW, {"cert.weak_signature"}),
        (leaf(server_auth=False), NOW, {"cert.no_server_auth"}),
        (leaf(self_signed=True), NOW, {"cert.self_signed"}),
    ],
)
def test_certificate_judged_at_the_given_time(cert, judged_at, expect):
    assert ids(judge_tls(obs_with(tls=tls(cert)), judged_at)) == expect


def test_connected_by_ip_to_a_certificate_naming_a_host():
    found = judge_tls(obs_with(tls=tls(leaf(), target="192.0.2.1")), NOW)
    assert ids(found) == {"cert.ip_target"}
    assert found[0].evidence["names"] == [TARGET]


def test_expiring_certificate_names_its_date_and_days():
    (found,) = judge_tls(obs_with(tls=tls(leaf())), NOW + timedelta(days=376))
    assert found.id == "cert.expiring_soon" and found.severity == Severity.WARNING
    expires = (NOW + timedelta(days=400)).date().isoformat()
    assert found.title == f"The server's TLS certificate expires in 24 days, on {expires}"
    assert found.evidence["thumbprint"] == "AB" * 20
    assert "'<NEW THUMBPRINT>'" in found.fix and "AB" * 20 in found.fix


def test_untrusted_self_signed_warns_only_on_a_domain_member():
    facts = tls(leaf(self_signed=True))
    workgroup = obs_with(tls=facts)
    assert ids(judge_tls(workgroup, NOW, NO_ROOTS)) == {"cert.self_signed"}
    member = obs_with(
        tls=facts,
        nla=nla(challenge(dns_domain="corp.example", dns_computer="srv.corp.example",
                          nb_domain="CORP", nb_computer="SRV")),
    )  # fmt: skip
    assert ids(judge_tls(member, NOW, NO_ROOTS)) == {"cert.self_signed", "cert.untrusted"}
    untrusted = next(f for f in judge_tls(member, NOW, NO_ROOTS) if f.id == "cert.untrusted")
    assert untrusted.evidence["store"] == "an empty test store"
    assert "SSLCertificateSHA1Hash='<THUMBPRINT>'" in untrusted.fix
    assert "AB" * 20 in untrusted.fix
    assert untrusted.to_dict()["confirm"].startswith("Get-CimInstance")
    # without trust roots, trust is not judged at all
    assert ids(judge_tls(member, NOW)) == {"cert.self_signed"}


VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    ("accepted", "expect"),
    [
        (["TLSv1"], {"tls.old_versions_only"}),
        (["TLSv1", "TLSv1.1"], {"tls.old_versions_only"}),
        (["TLSv1.3"], {"tls.no_tls12"}),
        (["TLSv1.1", "TLSv1.2"], {"tls.legacy_versions_enabled"}),
        (["TLSv1.2", "TLSv1.3"], set()),
        ([], set()),
    ],
)
def test_tls_versions(accepted, expect):
    versions = {v: "accepted" if v in accepted else "refused" for v in VERSIONS}
    facts = TlsVersionsFacts(versions)
    assert facts.accepted == accepted
    assert ids(judge_tls_versions(obs_with(tls_versions=facts), NOW)) == expect


def test_rdp_security_findings():
    cert = ProprietaryCertificate(1, 1, 1, 65537, 3, 512, 72, 64, b"\0" * 72, verified=False)
    sec = ServerSecurity(1, 1, b"r" * 32, b"c" * 184, cert)
    mcs = McsFacts(
        "RDP", 0, 0x1B, ServerData(None, None, sec),
        methods={"40BIT": MethodOutcome("40BIT", True, True, "40BIT", "LOW"),
                 "128BIT": MethodOutcome("128BIT", True, False, "40BIT", "LOW")},
    )  # fmt: skip
    assert mcs.encryption_level.setting == "Low"
    found = judge_mcs(obs_with(mcs=mcs), NOW)
    assert ids(found) == {
        "rdpsec.in_use",
        "rdpsec.low_level",
        "rdpsec.weak_methods",
        "rdpsec.corrupt_certificate",
    }
    assert next(f for f in found if f.id == "rdpsec.low_level").title == "Encryption level is Low"


def test_udp_amplification_only_above_the_limit():
    assert ids(judge_udp(obs_with(udp=UdpFacts("synack", amplification=1.0)), NOW)) == {
        "udp.enabled"
    }
    assert ids(judge_udp(obs_with(udp=UdpFacts("synack", amplification=8.0)), NOW)) == {
        "udp.enabled", "udp.amplification",
    }  # fmt: skip
    assert judge_udp(obs_with(udp=UdpFacts("closed")), NOW) == []
