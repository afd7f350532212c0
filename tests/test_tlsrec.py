"""TLS records and server handshake messages (RFC 5246 §6.2, §7.4) from real RDP captures."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from rdprobe.protocol import tlsrec
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "windows-handshakes.json").read_text())
FLIGHTS = [
    pytest.param(v, bytes.fromhex(p["hex"]), id=v["id"])
    for v in VECTORS
    for p in v["pdus"]
    if p["what"] == "tls_server_hello_certificate_done_record"
]
CLIENT_HELLOS = [
    bytes.fromhex(p["hex"])
    for v in VECTORS
    for p in v["pdus"]
    if p["what"] == "tls_client_hello_record"
]


def cn_of(der_bytes: bytes) -> str:
    cert = x509.load_der_x509_certificate(der_bytes)
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


@pytest.mark.parametrize(("vector", "raw"), FLIGHTS)
def test_server_flight_matches_recorded_facts(vector, raw):
    recorded = vector["facts"]["decoded"]["tls_server"]
    flight = tlsrec.parse_server_flight(raw)
    assert f"0x{flight.server_hello.version:04x}" == recorded["server_hello"]["version"]
    assert f"0x{flight.server_hello.cipher_suite:04x}" == recorded["server_hello"]["cipher_suite"]
    assert len(flight.server_hello.session_id) == recorded["server_hello"]["session_id_len"]
    assert flight.server_hello_done is recorded["server_hello_done"]
    assert len(flight.certificates) == len(recorded["certificates"])
    for der_bytes, facts in zip(flight.certificates, recorded["certificates"], strict=True):
        assert f"CN={cn_of(der_bytes)}" == facts["subject"]
        assert hashlib.sha256(der_bytes).hexdigest() == facts["sha256"]
    assert flight.alert is None


def test_names_of_the_recorded_versions_and_ciphers():
    flights = [tlsrec.parse_server_flight(p.values[1]) for p in FLIGHTS]
    assert {(f.version, f.cipher) for f in flights} == {
        ("TLSv1", "TLS_RSA_WITH_AES_128_CBC_SHA"),
        ("TLSv1.2", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    }


@pytest.mark.parametrize("size", [1, 7, 100, 500])
def test_handshake_spanning_several_records(size):
    raw = FLIGHTS[0].values[1]
    (record,), _ = tlsrec.parse_records(raw)
    stream = record.fragment
    pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
    resplit = b"".join(struct.pack("!BHH", 22, 0x0301, len(p)) + p for p in pieces)
    assert tlsrec.parse_server_flight(resplit) == tlsrec.parse_server_flight(raw)


def test_incomplete_trailing_data_is_ignored_and_alert_reported():
    raw = FLIGHTS[1].values[1]
    alert = struct.pack("!BHHBB", 21, 0x0303, 2, 2, 70)
    flight = tlsrec.parse_server_flight(alert + raw[:-10])
    assert flight.alert == tlsrec.Alert(2, 70)
    assert flight.server_hello is not None
    assert flight.certificates == () and not flight.server_hello_done


def test_client_hellos_from_captures_are_records():
    for raw in CLIENT_HELLOS:
        records, used = tlsrec.parse_records(raw)
        assert used == len(raw)
        (message,), _ = tlsrec.parse_handshakes(records[0].fragment)
        assert message.msg_type == tlsrec.HandshakeType.client_hello


def test_built_client_hello_parses_back():
    raw = tlsrec.build_client_hello(0x0302, (0x002F, 0x0035), server_name="rdp.example.test")
    (record,), used = tlsrec.parse_records(raw)
    assert used == len(raw) and record.version == 0x0301
    (message,), _ = tlsrec.parse_handshakes(record.fragment)
    body = message.body
    assert body[:2] == b"\x03\x02" and body[34] == 0  # empty session id
    suites_len = struct.unpack_from("!H", body, 35)[0]
    assert body[37 : 37 + suites_len] == bytes.fromhex("002f003500ff")
    assert b"rdp.example.test" in body


def test_tls13_server_hello_version_from_supported_versions():
    ext = struct.pack("!HHH", 43, 2, 0x0304)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + struct.pack("!H", len(ext))
    body += ext
    handshake = bytes([2]) + len(body).to_bytes(3, "big") + body
    record = struct.pack("!BHH", 22, 0x0303, len(handshake)) + handshake
    flight = tlsrec.parse_server_flight(record + struct.pack("!BHH", 23, 0x0303, 3) + b"xyz")
    assert flight.version == "TLSv1.3" and flight.cipher == "TLS_AES_128_GCM_SHA256"
    assert flight.certificates == ()


@pytest.mark.parametrize(
    "raw", [b"HTTP/1.1 400", b"\x16\x02\x00\x00\x01x", b"\x16\x03\x01\xff\xff"]
)
def test_not_tls(raw):
    with pytest.raises(ProtocolError):
        tlsrec.parse_server_flight(raw)


def test_truncated_record_needs_more_data():
    raw = FLIGHTS[0].values[1]
    for cut in (0, 3, 5, 100, len(raw) - 1):
        with pytest.raises(NeedMoreData):
            tlsrec.parse_record(raw[:cut])


def test_hostile_input_raises_only_protocol_error():
    rng = random.Random(7)
    samples = [p.values[1] for p in FLIGHTS]
    for sample in samples:
        for cut in range(0, len(sample), 3):
            try:
                tlsrec.parse_server_flight(sample[:cut])
            except ProtocolError:
                pass
    for _ in range(1000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(min(len(data), 200))] = rng.randrange(256)
        try:
            tlsrec.parse_server_flight(bytes(data))
        except ProtocolError:
            pass
    for _ in range(300):
        try:
            tlsrec.parse_server_flight(b"\x16\x03\x03" + rng.randbytes(rng.randrange(60)))
        except ProtocolError:
            pass
