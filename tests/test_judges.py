"""Judgement of stage facts: pure functions of the facts and of the time they are judged at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rdprobe.analysis.judges import judge_mcs, judge_nla, judge_tls, judge_tls_versions, judge_udp
from rdprobe.analysis.observations import TargetObservation

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def obs_with(**stages) -> TargetObservation:
    obs = TargetObservation("srv.example.test", 3389, "127.0.0.1", NOW)
    obs.stages.update(stages)
    return obs


def ids(findings) -> set[str]:
    return {f.id for f in findings}


@pytest.mark.parametrize(
    ("skew_s", "flagged"), [(0, False), (299, False), (301, True), (-3600, True)]
)
def test_clock_skew_over_five_minutes(skew_s, flagged):
    nla = {
        "challenge": {
            "dns_computer": "WIN10CGR",
            "timestamp": (NOW + timedelta(seconds=skew_s)).isoformat(),
        },
        "observed_at": NOW.isoformat(),
    }
    found = judge_nla(obs_with(nla=nla), NOW)
    assert ("nla.clock_skew" in ids(found)) is flagged
    assert "nla.identity" in ids(found)
    if flagged:
        f = next(f for f in found if f.id == "nla.clock_skew")
        assert f.evidence["skew_s"] == skew_s


def test_nla_without_challenge_is_a_failure():
    assert ids(judge_nla(obs_with(nla={"challenge": None, "error": "garbage"}), NOW)) == {
        "nla.failed"
    }


def leaf(**kw):
    base = {
        "subject": "CN=srv", "not_before": (NOW - timedelta(days=10)).isoformat(),
        "not_after": (NOW + timedelta(days=10)).isoformat(), "self_signed": False,
        "name_match": True, "key_type": "RSA", "key_bits": 2048, "signature_hash": "sha256",
        "server_auth": True,
    }  # fmt: skip
    return {**base, **kw}


@pytest.mark.parametrize(
    ("cert", "judged_at", "expect"),
    [
        (leaf(), NOW, set()),
        (leaf(), NOW + timedelta(days=11), {"cert.expired"}),  # the same certificate, later
        (leaf(), NOW - timedelta(days=11), {"cert.not_yet_valid"}),
        (leaf(name_match=False), NOW, {"cert.name_mismatch"}),
        (leaf(name_match=False, target_is_ip=True), NOW, {"cert.ip_target"}),
        (leaf(key_bits=1024), NOW, {"cert.weak_key"}),
        (leaf(signature_hash="sha1"), NOW, {"cert.weak_signature"}),
        (leaf(server_auth=False), NOW, {"cert.no_server_auth"}),
        (leaf(self_signed=True), NOW, {"cert.self_signed"}),
    ],
)
def test_certificate_judged_at_the_given_time(cert, judged_at, expect):
    tls = {"error": None, "chain": [cert], "trust": {"trusted": True, "reason": "ok"}}
    assert ids(judge_tls(obs_with(tls=tls), judged_at)) == expect


def test_untrusted_self_signed_warns_only_on_a_domain_member():
    tls = {
        "error": None,
        "chain": [leaf(self_signed=True)],
        "trust": {"trusted": False, "reason": "x"},
    }
    workgroup = obs_with(tls=tls)
    assert ids(judge_tls(workgroup, NOW)) == {"cert.self_signed"}
    member = obs_with(
        tls=tls,
        nla={"challenge": {"dns_domain": "corp.example", "dns_computer": "srv.corp.example",
                           "nb_domain": "CORP", "nb_computer": "SRV"}},
    )  # fmt: skip
    assert ids(judge_tls(member, NOW)) == {"cert.self_signed", "cert.untrusted"}


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
    assert ids(judge_tls_versions(obs_with(tls_versions={"accepted": accepted}), NOW)) == expect


def test_rdp_security_findings():
    sec = {
        "encryption_method": 1, "encryption_method_name": "40BIT", "encryption_level": 1,
        "encryption_level_name": "LOW",
        "certificate": {"type": "proprietary", "verified": False}, "certificate_len": 184,
    }  # fmt: skip
    mcs = {
        "selected_protocol": 0, "server_data": {"security": sec},
        "methods": {"40BIT": {"accepted": True}, "128BIT": {"accepted": False}},
        "encryption_level": {"setting": "Low"},
    }  # fmt: skip
    found = judge_mcs(obs_with(mcs=mcs), NOW)
    assert ids(found) == {
        "rdpsec.in_use",
        "rdpsec.low_level",
        "rdpsec.weak_methods",
        "rdpsec.corrupt_certificate",
    }
    assert next(f for f in found if f.id == "rdpsec.low_level").title == "Encryption level is Low"


def test_udp_amplification_only_above_the_limit():
    assert ids(judge_udp(obs_with(udp={"outcome": "synack", "amplification": 1.0}), NOW)) == {
        "udp.enabled"
    }
    assert ids(judge_udp(obs_with(udp={"outcome": "synack", "amplification": 8.0}), NOW)) == {
        "udp.enabled", "udp.amplification",
    }  # fmt: skip
    assert judge_udp(obs_with(udp={"outcome": "closed"}), NOW) == []
