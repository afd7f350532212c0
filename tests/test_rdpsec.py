"""Server certificates of Standard RDP Security: real Windows vectors, Zeek's logs, hostile input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rdprobe.protocol import gcc_server, mcs, rdpsec, x224
from rdprobe.protocol.errors import ProtocolError

ROOT = Path(__file__).parent.parent
VECTORS = json.loads((ROOT / "tests/vectors/windows-handshakes.json").read_text())
BASELINE = ROOT / "captures/zeek/baseline"


def _security(pdu_hex: str) -> gcc_server.ServerSecurity:
    cr = mcs.parse_connect_response(x224.parse_data(bytes.fromhex(pdu_hex)))
    return gcc_server.parse_conference_create_response(cr.user_data).security


CERTS = [
    (v["id"], _security(p["hex"]), v["facts"]["summary"])
    for v in VECTORS
    for p in v["pdus"]
    if p["what"] == "mcs_cr" and v["facts"]["summary"].get("cert_type")
]
PROPRIETARY = [c for c in CERTS if c[2]["cert_type"] == "proprietary"]
X509 = [c for c in CERTS if c[2]["cert_type"] == "x509"]


def test_vector_counts() -> None:
    assert len(PROPRIETARY) == 4 and len(X509) == 3


@pytest.mark.parametrize(("vid", "sec", "summary"), PROPRIETARY, ids=[c[0] for c in PROPRIETARY])
def test_every_proprietary_certificate_verifies(vid: str, sec, summary: dict) -> None:
    cert = rdpsec.parse_server_certificate(sec.certificate_bytes)
    assert isinstance(cert, rdpsec.ProprietaryCertificate)
    assert cert.verified and cert.permanent
    assert cert.bit_length == summary["rsa_bitlen"]
    assert cert.bit_length - 8 < cert.modulus.bit_length() <= cert.bit_length  # W2000: 511
    assert cert.public_exponent == 65537 and len(cert.signature) == 72
    assert rdpsec.verify_signature(sec.certificate_bytes[:108], cert.signature)


@pytest.mark.parametrize(("vid", "sec", "summary"), PROPRIETARY, ids=[c[0] for c in PROPRIETARY])
def test_any_flipped_signed_or_signature_byte_fails(vid: str, sec, summary: dict) -> None:
    raw = sec.certificate_bytes
    sig_start = len(raw) - 72
    positions = [*range(sig_start, sig_start + 64), 0x24, 0x30, 0x50]  # signature, modulus, more
    for pos in positions:
        flipped = bytearray(raw)
        flipped[pos] ^= 0x01
        cert = rdpsec.parse_server_certificate(bytes(flipped))
        assert not cert.verified, pos
    # and the finding travels in the parsed MCS data (not as an exception)
    flipped = bytearray(raw)
    flipped[sig_start + 5] ^= 0x80
    again = gcc_server.parse_server_security(
        gcc_server.build_server_security(
            gcc_server.ServerSecurity(2, 2, sec.server_random, bytes(flipped))
        )[4:]
    )
    assert again.certificate is not None and not again.certificate.verified


def test_permanent_polarity_matches_spec_and_zeek() -> None:
    by_id = {c[0]: c[1].certificate for c in CERTS}
    zeek = {
        "zeek-rdp-proprietary-cert": "rdp-proprietary-encryption",
        "zeek-rdp-x509-temporary-chain": "rdp-x509",
    }
    for vid, trace in zeek.items():
        rows = (BASELINE / trace / "rdp.log").read_text().splitlines()
        fields = next(r for r in rows if r.startswith("#fields")).split("\t")[1:]
        row = [dict(zip(fields, r.split("\t"), strict=True)) for r in rows if r[:1] != "#"][-1]
        assert by_id[vid].permanent == (row["cert_permanent"] == "T")
    assert by_id["zeek-rdp-x509-temporary-chain"].dw_version == 0x80000002


def test_x509_chain_matches_zeek_x509_log() -> None:
    chain = next(c[1].certificate for c in X509 if c[0] == "zeek-rdp-x509-temporary-chain")
    rows = (BASELINE / "rdp-x509" / "x509.log").read_text().splitlines()
    fields = next(r for r in rows if r.startswith("#fields")).split("\t")[1:]
    logged = [dict(zip(fields, r.split("\t"), strict=True)) for r in rows if r[:1] != "#"]
    assert len(chain.certs) == len(logged) == 2
    for info, row in zip(chain.infos, logged, strict=True):
        assert info.serial == row["certificate.serial"].lstrip("0")
        assert str(info.key_bits) == row["certificate.key_length"]
        assert str(info.public_exponent) == row["certificate.exponent"]
        assert int(info.not_before.timestamp()) == int(float(row["certificate.not_valid_before"]))
        assert info.error is None
    assert chain.infos[0].subject == chain.infos[1].issuer == "CN=SERVR+L=TURNBKL"
    json.dumps(chain.to_dict())


def test_windows_2008_licensing_chain() -> None:
    chain = next(c[1].certificate for c in X509 if c[0].startswith("redemption-w2008"))
    assert chain.permanent and len(chain.certs) == 4
    assert [i.key_bits for i in chain.infos] == [4096, 1024, 2048, 512]  # leaf is 512-bit
    assert chain.infos[-1].subject.startswith("CN=ncalrpc:")


def test_build_round_trip_and_temporary_bit() -> None:
    modulus = (1 << 2047) | 0xABCDEF
    raw = rdpsec.build_proprietary_certificate(modulus, 3, temporary=True)
    cert = rdpsec.parse_server_certificate(raw)
    assert cert.verified and not cert.permanent and cert.dw_version == 0x80000001
    assert (cert.modulus, cert.public_exponent, cert.bit_length) == (modulus, 3, 2048)
    assert cert.key_len == 264 and cert.data_len == 255
    chain_der = next(c[1].certificate.certs for c in X509)
    chain = rdpsec.parse_server_certificate(rdpsec.build_x509_chain(list(chain_der)))
    assert chain.certs == chain_der and chain.permanent


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:3], "dwVersion"),
        (lambda b: b"\x03\x00\x00\x00" + b[4:], "certChainVersion"),
        (lambda b: b[:16] + b"RSA2" + b[20:], "magic"),
        (lambda b: b[:4] + b"\x02" + b[5:], "dwSigAlgId"),
        (lambda b: b[:-10], "SignatureBlob"),
    ],
)
def test_malformed_proprietary_raises_protocol_error(mutate, message: str) -> None:
    raw = PROPRIETARY[0][1].certificate_bytes
    with pytest.raises(ProtocolError, match=message):
        rdpsec.parse_server_certificate(mutate(raw))


@pytest.mark.parametrize(("vid", "sec", "summary"), CERTS, ids=[c[0] for c in CERTS])
def test_hostile_certificates_raise_only_protocol_error(vid: str, sec, summary: dict) -> None:
    raw = sec.certificate_bytes
    step = max(1, len(raw) // 400)
    for cut in range(0, len(raw), step):
        try:
            rdpsec.parse_server_certificate(raw[:cut])
        except ProtocolError:
            pass
    rng = random.Random(len(raw))
    for _ in range(300):
        mutated = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            result = rdpsec.parse_server_certificate(bytes(mutated))
        except ProtocolError:
            continue
        json.dumps(result.to_dict())


@pytest.mark.parametrize("vid,sec,_summary", CERTS[:4], ids=[c[0] for c in CERTS[:4]])
def test_a_certificate_parses_the_same_from_any_buffer_and_a_bad_one_fails_every_time(
    vid, sec, _summary
):
    """parse_server_certificate caches by the bytes (each MCS probe of a listener sends the
    same certificate): a bytearray or memoryview of them gives the same value, and a cut one
    raises each time it is parsed, never a cached answer or a TypeError."""
    data = sec.certificate_bytes
    first = rdpsec.parse_server_certificate(data)
    assert rdpsec.parse_server_certificate(bytearray(data)) == first
    assert rdpsec.parse_server_certificate(memoryview(bytearray(data))) == first
    for _ in range(2):
        with pytest.raises(ProtocolError):
            rdpsec.parse_server_certificate(bytearray(data[: len(data) // 2]))
