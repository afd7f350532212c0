"""NTLM NEGOTIATE/CHALLENGE (MS-NLMP 2.2.1.1, 2.2.1.2) against real Windows CHALLENGE messages."""

from __future__ import annotations

import json
import random
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rdprobe.analysis.windows_versions import describe_windows_version, windows_product
from rdprobe.protocol import ntlm
from rdprobe.protocol.credssp import TSRequest
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.ntlm import AvId, NegotiateFlags, NtlmChallenge

VECTORS = json.loads((Path(__file__).parent / "vectors" / "windows-handshakes.json").read_text())
F = NegotiateFlags


def challenge_vectors():
    for vector in VECTORS:
        for pdu in vector["pdus"]:
            if pdu["what"] == "credssp_tsrequest_ntlm_challenge":
                yield pytest.param(vector, bytes.fromhex(pdu["hex"]), id=vector["id"])


def first_tsrequest() -> bytes:
    return next(challenge_vectors()).values[1]


def token_of(tsrequest: bytes) -> bytes:
    return TSRequest.parse(tsrequest).nego_tokens[0]


@pytest.mark.parametrize(("vector", "raw"), list(challenge_vectors()))
def test_windows_challenge_decodes_to_recorded_facts(vector, raw):
    summary = vector["facts"]["summary"]
    decoded = vector["facts"]["decoded"]["ntlm_challenge"]
    challenge = ntlm.parse_challenge(token_of(raw))
    assert challenge.target_name == summary["ntlm_target"]
    assert f"0x{int(challenge.flags):08x}" == summary["ntlm_flags"]
    assert challenge.version_text == summary["ntlm_version"]
    assert challenge.version[3] == decoded["Version"]["ntlm_revision"]
    assert challenge.server_challenge.hex() == decoded["ServerChallenge"]
    av = summary["ntlm_av"]
    assert challenge.nb_computer == av["MsvAvNbComputerName"]
    assert challenge.nb_domain == av["MsvAvNbDomainName"]
    assert challenge.dns_computer == av["MsvAvDnsComputerName"]
    assert challenge.dns_domain == av["MsvAvDnsDomainName"]
    assert challenge.dns_tree == av.get("MsvAvDnsTreeName")
    recorded = datetime.fromisoformat(av["MsvAvTimestamp"].replace("Z", "+00:00"))
    assert challenge.timestamp == recorded
    assert challenge.timestamp.tzinfo is not None
    assert challenge.other_av_pairs == ()
    as_json = json.loads(json.dumps(challenge.to_dict()))
    assert as_json["version"] == summary["ntlm_version"]
    assert as_json["timestamp"].startswith(av["MsvAvTimestamp"][:19])


def test_win10_build_maps_to_server_2019_family():
    by_id = {v["id"]: v for v in VECTORS}
    raw = next(
        bytes.fromhex(p["hex"])
        for p in by_id["redemption-win10-nla-ntlm-WIN10CGR"]["pdus"]
        if p["what"] == "credssp_tsrequest_ntlm_challenge"
    )
    major, minor, build, _rev = ntlm.parse_challenge(token_of(raw)).version
    assert "Windows Server 2019" in windows_product(major, minor, build)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((6, 1, 7600), "Windows 7 / Windows Server 2008 R2"),
        ((6, 1, 7601), "SP1"),
        ((6, 3, 9600), "Windows Server 2012 R2"),
        ((10, 0, 14393), "Windows Server 2016"),
        ((10, 0, 20348), "Windows Server 2022"),
        ((10, 0, 26100), "Windows Server 2025"),
    ],
)
def test_windows_versions(version, expected):
    assert expected in windows_product(*version)


def test_unknown_builds_keep_the_build_visible():
    assert windows_product(10, 0, 12345) is None
    assert "12345" in describe_windows_version(10, 0, 12345)
    assert "Windows 10" in describe_windows_version(10, 0, 12345)
    assert "7.7.7" in describe_windows_version(7, 7, 7)


def test_negotiate_carries_no_names_and_the_requested_flags():
    raw = ntlm.build_negotiate()
    assert raw[:8] == b"NTLMSSP\x00"
    assert struct.unpack_from("<I", raw, 8)[0] == 1
    parsed = ntlm.parse_negotiate(raw)
    assert parsed.domain == b"" and parsed.workstation == b""
    for flag in (
        F.NTLMSSP_NEGOTIATE_UNICODE,
        F.NTLM_NEGOTIATE_OEM,
        F.NTLMSSP_REQUEST_TARGET,
        F.NTLMSSP_NEGOTIATE_NTLM,
        F.NTLMSSP_NEGOTIATE_ALWAYS_SIGN,
        F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY,
        F.NTLMSSP_NEGOTIATE_VERSION,
        F.NTLMSSP_NEGOTIATE_128,
        F.NTLMSSP_NEGOTIATE_56,
        F.NTLMSSP_NEGOTIATE_KEY_EXCH,
    ):
        assert parsed.flags & flag
    assert not parsed.flags & (F.NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED | F.NTLMSSP_ANONYMOUS)
    assert parsed.version == ntlm.CLIENT_VERSION
    assert len(raw) == 40


def test_redemption_negotiate_from_vectors_parses():
    by_id = {v["id"]: v for v in VECTORS}
    pdu = by_id["redemption-win10-nla-ntlm-WIN10CGR"]["pdus"][0]
    parsed = ntlm.parse_negotiate(token_of(bytes.fromhex(pdu["hex"])))
    assert int(parsed.flags) == 0xE20882B7
    assert parsed.version == (6, 1, 7601, 15)


def test_challenge_build_parse_round_trip_distinct_values():
    original = NtlmChallenge(
        target_name="DOMAINX",
        flags=NegotiateFlags(0xE2898235),
        server_challenge=bytes(range(1, 9)),
        version=(10, 0, 20348, 15),
        nb_computer="HOSTA",
        nb_domain="DOMAINX",
        dns_computer="hosta.example.test",
        dns_domain="example.test",
        dns_tree="tree.test",
        timestamp=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        other_av_pairs=((AvId.MsvAvFlags, b"\x02\x00\x00\x00"), (99, b"xyz")),
    )
    again = ntlm.parse_challenge(ntlm.build_challenge(original))
    assert again == original


def test_challenge_build_is_byte_exact_for_a_real_message():
    by_id = {v["id"]: v for v in VECTORS}
    raw = token_of(
        bytes.fromhex(by_id["redemption-ntlm-challenge-RDP-WINDOWS-DEV"]["pdus"][0]["hex"])
    )
    assert ntlm.build_challenge(ntlm.parse_challenge(raw)) == raw


def test_challenge_without_version_field():
    original = NtlmChallenge(
        target_name="T",
        flags=F.NTLMSSP_NEGOTIATE_UNICODE | F.NTLMSSP_NEGOTIATE_TARGET_INFO,
        server_challenge=b"\x11" * 8,
        version=None,
        nb_computer="C",
    )
    raw = ntlm.build_challenge(original)
    assert len(raw) > 48 and struct.unpack_from("<I", raw, 16)[0] == 48
    assert ntlm.parse_challenge(raw) == original


def test_out_of_range_filetime_is_kept_raw():
    big = (2**64 - 1).to_bytes(8, "little")
    raw = ntlm.build_challenge(NtlmChallenge("T", F.NTLMSSP_NEGOTIATE_UNICODE, b"\x01" * 8, None))
    info = ntlm.build_av_pairs([(AvId.MsvAvTimestamp, big)])
    raw = raw[:40] + struct.pack("<HHI", len(info), len(info), len(raw)) + raw[48:] + info
    parsed = ntlm.parse_challenge(raw)
    assert parsed.timestamp is None
    assert parsed.other_av_pairs == ((AvId.MsvAvTimestamp, big),)


@pytest.mark.parametrize(
    ("patch_offset", "value"),
    [(12, struct.pack("<HHI", 8, 8, 5000)), (40, struct.pack("<HHI", 300, 300, 56))],
)
def test_payload_pointing_outside_is_an_error(patch_offset, value):
    raw = bytearray(token_of(first_tsrequest()))
    raw[patch_offset : patch_offset + 8] = value
    with pytest.raises(ProtocolError):
        ntlm.parse_challenge(bytes(raw))


def test_wrong_signature_and_type():
    raw = token_of(first_tsrequest())
    with pytest.raises(ProtocolError):
        ntlm.parse_challenge(b"XTLMSSP\x00" + raw[8:])
    with pytest.raises(ProtocolError):
        ntlm.parse_negotiate(raw)


def test_hostile_input_raises_only_protocol_error():
    rng = random.Random(3)
    samples = [token_of(p.values[1]) for p in challenge_vectors()]
    for sample in samples:
        for cut in range(len(sample)):
            try:
                ntlm.parse_challenge(sample[:cut])
            except ProtocolError:
                pass
    for _ in range(1000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for parser in (ntlm.parse_challenge, ntlm.parse_negotiate):
            try:
                parser(bytes(data))
            except ProtocolError:
                pass
    for _ in range(200):
        blob = b"NTLMSSP\x00\x02\x00\x00\x00" + rng.randbytes(rng.randrange(80))
        try:
            ntlm.parse_challenge(blob)
        except ProtocolError:
            pass
