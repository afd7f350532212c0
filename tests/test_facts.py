"""The typed stage facts: JSON round trip, no verdict inside, and one object from live and pcap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from certgen import self_signed

from rdprobe.analysis.certificate import describe_certificate, describe_chain
from rdprobe.analysis.classify import classify
from rdprobe.analysis.facts import (
    STAGES,
    CertificateFacts,
    CertificateUnreadable,
    NlaFacts,
    RunConfig,
    StageNote,
    TlsFacts,
    TlsFallbackFacts,
    TlsVersionsFacts,
    UdpFacts,
)
from rdprobe.analysis.observations import TargetObservation
from rdprobe.protocol import rdpudp, tlsrec

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
VERDICT_KEYS = {"expired", "not_yet_valid", "days_left", "name_match", "target_is_ip", "trust"}


@pytest.fixture(scope="module")
def cert_der() -> bytes:
    from cryptography.hazmat.primitives import serialization

    _key, cert = self_signed("srv.example.test", days=30)
    return cert.public_bytes(serialization.Encoding.DER)


def roundtrip(facts):
    data = json.loads(json.dumps(facts.to_dict()))
    back = type(facts).from_dict(data)
    assert back.to_dict() == facts.to_dict()
    return back


def test_certificate_facts_round_trip_and_carry_no_verdict(cert_der):
    facts = describe_certificate(cert_der)
    assert facts.der == cert_der
    d = facts.to_dict()
    assert not VERDICT_KEYS & set(d) and "der" not in d
    back = roundtrip(facts)
    assert back == facts  # equal but for the bytes, which the JSON form does not keep
    assert back.der == b""


def test_tls_facts_round_trip_with_fallback(cert_der):
    chain = describe_chain((cert_der, b"junk"))
    assert isinstance(chain[1], CertificateUnreadable)
    fallback = TlsFallbackFacts(
        "TLSv1", "TLS_RSA_WITH_RC4_128_SHA", 5, tlsrec.Alert(2, 40), True, 900, None, chain
    )
    facts = TlsFacts("SSL", "SSL", None, None, None, "handshake failure", (), "srv", fallback)
    back = roundtrip(facts)
    assert back.fallback.cipher_code == 5 and back.fallback.alert == tlsrec.Alert(2, 40)
    assert back.fallback.chain[1].error == chain[1].error
    assert "TLS_RSA_WITH_RC4_128_SHA" in back.summary
    assert back.to_dict()["fallback"]["cipher_code"] == "0x0005"


def test_versions_udp_note_round_trip():
    versions = TlsVersionsFacts({"TLSv1": "refused", "TLSv1.2": "accepted", "TLSv1.3": "accepted"})
    assert roundtrip(versions).accepted == ["TLSv1.2", "TLSv1.3"]
    syn_ack = rdpudp.RdpUdpSyn(0x7, 11, 64, 12, 1232, 1232, 1, 2, b"c" * 16, None, 1232)
    udp = UdpFacts("synack", syn_ack, 1232, 1232, 1232, 1.0, 3.5, 1, True)
    assert roundtrip(udp).syn_ack == syn_ack
    for note in (StageNote(skipped="no confirm"), StageNote(error="internal error: X")):
        assert roundtrip(note) == note
    assert StageNote(skipped="x").to_dict() == {"skipped": "x", "summary": "skipped: x"}


def test_nla_facts_round_trip_from_a_windows_challenge():
    from test_live_tls import win10_challenge_tsrequest

    from rdprobe.live.nla import interpret_reply

    result = interpret_reply(win10_challenge_tsrequest())
    facts = NlaFacts("HYBRID_EX", result.challenge, result.tsrequest_version, None, 0xC000006D, NOW)
    back = roundtrip(facts)
    assert back == facts
    assert back.os == facts.os and "WIN10CGR" in back.summary
    assert back.challenge.timestamp == result.challenge.timestamp


def test_observation_stages_are_typed_and_read_only(cert_der):
    obs = TargetObservation("srv.example.test", 3389, "127.0.0.1", NOW, config=RunConfig(5.0))
    obs.tls = TlsFacts("SSL", "SSL", "TLSv1.3", "X", 256, None, describe_chain([cert_der]), "srv")
    obs.udp = StageNote(skipped="not asked")
    assert list(obs.stages) == ["tls", "udp"]  # STAGES order, stages that ran only
    assert set(STAGES) >= set(obs.stages)
    with pytest.raises(TypeError):
        obs.stages["nla"] = {}  # type: ignore[index]


def test_same_certificate_judged_at_two_times(cert_der):
    """The facts stay the same; the verdict and the finding follow the classifier's now."""
    chain = describe_chain([cert_der])
    obs = TargetObservation("srv.example.test", 3389, "127.0.0.1", NOW)
    obs.tls = TlsFacts("SSL", "SSL", "TLSv1.2", "X", 128, None, chain, "srv.example.test")
    leaf = chain[0]
    assert isinstance(leaf, CertificateFacts)
    not_after = datetime.fromisoformat(leaf.not_after)
    before = classify(obs, not_after - timedelta(days=1))
    after = classify(obs, not_after + timedelta(seconds=1))
    assert before.certificate.expired is False and before.certificate.days_left == 1
    assert after.certificate.expired is True
    assert "cert.expired" not in {f.id for f in before.findings}
    assert "cert.expired" in {f.id for f in after.findings}
    assert before.observation.stages == after.observation.stages


def test_pcap_builds_the_same_typed_facts():
    """The capture path builds the same dataclasses as the live stages, judged at capture time."""
    from rdprobe.capture.analyze import analyze, judge

    path = Path(__file__).resolve().parent.parent / "captures/zeek/rdp-to-ssl.pcap"
    conns, _warnings = analyze(str(path))
    conn = conns[0]
    report = judge(conn)
    tls = report.observation.tls
    assert isinstance(tls, TlsFacts) and tls.server_name == conn.sni
    assert isinstance(tls.chain[0], CertificateFacts) and tls.chain[0].der
    assert report.now == conn.started
    assert report.certificate is not None and report.certificate.source == "tls"
    assert report.certificate.trusted is False  # self-signed, judged against the system store
    assert type(tls).from_dict(json.loads(json.dumps(tls.to_dict()))).to_dict() == tls.to_dict()


def test_every_stage_has_a_field_a_producer_name_and_a_judge():
    """How a stage plugs in: a name in facts.STAGES, a TargetObservation field, a judge; the
    live stages are named after the facts they set."""
    import dataclasses

    from rdprobe.analysis.judges import STAGE_JUDGES
    from rdprobe.live.stages import STAGES as LIVE_STAGES

    fields = {f.name for f in dataclasses.fields(TargetObservation)}
    assert set(STAGES) <= fields
    assert {name for name, _stage, _needs in LIVE_STAGES} <= set(STAGES)
    assert len(STAGE_JUDGES) == len(STAGES)
