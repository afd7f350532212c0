"""The hand-built TLS 1.0 hello after a failed handshake (rdprobe.live.tls.legacy_hello).

A scripted asyncio server on 127.0.0.1 answers every X.224 Connection Request with a confirm
selecting PROTOCOL_SSL, then answers whatever the client sends with a fixed server flight: a
TLS 1.0 ServerHello choosing RC4-128-SHA (which Debian 12's OpenSSL 3 does not have), a
Certificate and ServerHelloDone, built here from RFC 5246 §7.4. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from datetime import UTC, datetime

import pytest
from certgen import self_signed
from cryptography.hazmat.primitives import serialization

from rdprobe.analysis.facts import CertificateFacts, TlsFacts, TlsFallbackFacts
from rdprobe.analysis.judges import judge_tls, obsolete_cipher
from rdprobe.analysis.observations import TargetObservation
from rdprobe.live import tls
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.protocol import tlsrec

X224_CONFIRM_SSL = bytes.fromhex("030000130ed00000123400020f080001000000")
TIMEOUT = 3.0
OPTIONS = CheckOptions(timeouts=Timeouts.from_timeout(TIMEOUT), stages=frozenset({"tls"}))
SUBJECT_CN = "W2K3-LEGACY"


@pytest.fixture(scope="module")
def legacy_cert() -> bytes:
    """A 1024-bit RSA self-signed certificate, as 2003-era servers made (OpenSSL 3 no longer
    signs with SHA-1, so SHA-256 here)."""
    _key, cert = self_signed(SUBJECT_CN, bits=1024, days=365, serial=2003)
    return cert.public_bytes(serialization.Encoding.DER)


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def record(content_type: int, payload: bytes, version: int = 0x0301) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def server_flight(cert_der: bytes, suite: int = 0x0005) -> bytes:
    """ServerHello (TLS 1.0, *suite*, no extensions) + Certificate + ServerHelloDone, the
    ServerHello in its own record and the rest in a second one, as SCHANNEL may split them."""
    hello = struct.pack("!H", 0x0301) + bytes(range(32)) + b"\x20" + bytes(32)
    hello += struct.pack("!HB", suite, 0)
    certs = len(cert_der).to_bytes(3, "big") + cert_der
    certificate = len(certs).to_bytes(3, "big") + certs
    rest = handshake(11, certificate) + handshake(14, b"")
    return record(22, handshake(2, hello)) + record(22, rest)


@contextlib.asynccontextmanager
async def scripted_server(answer: bytes):
    """Confirm(SSL) to any Connection Request, then *answer* to the client's first bytes."""
    tasks: set[asyncio.Task] = set()
    hellos: list[bytes] = []

    async def handle(reader, writer):
        tasks.add(asyncio.current_task())
        try:
            header = await asyncio.wait_for(reader.readexactly(4), TIMEOUT)
            length = struct.unpack("!H", header[2:4])[0]
            await asyncio.wait_for(reader.readexactly(length - 4), TIMEOUT)
            writer.write(X224_CONFIRM_SSL)
            await writer.drain()
            first = await asyncio.wait_for(reader.read(4096), TIMEOUT)
            if first:
                hellos.append(first)
                writer.write(answer)
                await writer.drain()
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], hellos
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


def test_flight_bytes_parse_as_built(legacy_cert):
    flight = tlsrec.parse_server_flight(server_flight(legacy_cert))
    assert (flight.version, flight.cipher) == ("TLSv1", "TLS_RSA_WITH_RC4_128_SHA")
    assert flight.certificates == (legacy_cert,) and flight.server_hello_done


async def test_check_reports_what_an_rc4_only_server_offers(legacy_cert):
    async with scripted_server(server_flight(legacy_cert)) as (port, hellos):
        (report,) = await check_target(Target("127.0.0.1", port, True), OPTIONS)
    facts = report.observation.stages["tls"]
    assert facts["error"] and facts["version"] is None  # OpenSSL 3 has no RC4
    fallback = facts["fallback"]
    assert fallback["version"] == "TLSv1"
    assert fallback["cipher"] == "TLS_RSA_WITH_RC4_128_SHA"
    assert fallback["cipher_code"] == "0x0005"
    assert fallback["server_hello_done"] is True and fallback["error"] is None
    assert fallback["chain"][0]["subject"] == f"CN={SUBJECT_CN}"
    assert fallback["chain"][0]["key_bits"] == 1024
    # the verdicts on the fallback's leaf are judged in the classifier, at the report's time
    assert report.certificate.source == "tls.fallback"
    assert report.certificate.trusted is False and report.certificate.subject == f"CN={SUBJECT_CN}"
    assert "TLS_RSA_WITH_RC4_128_SHA" in facts["summary"]
    json.dumps(facts)
    ids = {f.id for f in report.findings}
    assert "tls.obsolete_ciphers" in ids
    assert "tls.handshake_failed" not in ids
    assert {"cert.weak_key", "cert.self_signed"} <= ids  # judged anyway
    finding = next(f for f in report.findings if f.id == "tls.obsolete_ciphers")
    assert "TLS_RSA_WITH_RC4_128_SHA" in finding.title
    # the fallback's hello is TLS 1.0 offering the legacy suites (and the SCSV)
    # (the pinned TLS 1.0 probe of the version matrix, run at the same time, is one too)
    legacy = [h for h in hellos if h[1:3] == b"\x03\x01" and h[9:11] == b"\x03\x01"]
    assert legacy, "no TLS 1.0 ClientHello reached the server"
    offered = []
    for hello in legacy:
        (message,), _ = tlsrec.parse_handshakes(tlsrec.parse_record(hello)[0].fragment)
        suites_len = struct.unpack_from("!H", message.body, 35)[0]
        offered.append(message.body[37 : 37 + suites_len])
    assert bytes.fromhex("00050004000a002f003500ff") in offered


async def test_server_answering_garbage_still_fails_the_handshake():
    async with scripted_server(b"garbage, not TLS at all\r\n" * 4) as (port, _hellos):
        (report,) = await check_target(Target("127.0.0.1", port, True), OPTIONS)
    facts = report.observation.stages["tls"]
    assert facts["error"]
    assert facts["fallback"]["version"] is None
    assert facts["fallback"]["error"].startswith("not TLS")
    ids = {f.id for f in report.findings}
    assert "tls.handshake_failed" in ids and "tls.obsolete_ciphers" not in ids


async def test_legacy_hello_stops_at_an_alert_and_on_silence():
    alert = record(21, b"\x02\x28")  # fatal handshake_failure
    async with scripted_server(alert) as (port, _hellos):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes.fromhex("030000130ee00000000000010008000b000000"))
        assert await reader.readexactly(19) == X224_CONFIRM_SSL
        result = await tls.legacy_hello(reader, writer, timeout=TIMEOUT)
        writer.close()
    assert result.alert == tlsrec.Alert(2, 40) and result.version is None
    assert result.error is None and result.bytes_read == len(alert)

    async def silent(reader, writer):
        await asyncio.sleep(TIMEOUT)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        result = await tls.legacy_hello(reader, writer, timeout=0.3)
        writer.close()
    finally:
        server.close()
    assert result.error == "timeout" and result.version is None


async def test_legacy_hello_read_is_bounded(legacy_cert):
    endless = record(22, handshake(2, b"\x03\x01" + bytes(40))[:30]) + b"\x16\x03\x01\x40\x00"
    endless += bytes(1 << 15)
    async with scripted_server(endless) as (port, _hellos):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(bytes.fromhex("030000130ee00000000000010008000b000000"))
        await reader.readexactly(19)
        result = await tls.legacy_hello(reader, writer, timeout=TIMEOUT, limit=4096)
        writer.close()
    assert result.bytes_read == 4096 and "4096" in (result.error or "")


@pytest.mark.parametrize(
    ("name", "obsolete"),
    [
        ("TLS_RSA_WITH_RC4_128_SHA", True),
        ("TLS_RSA_WITH_RC4_128_MD5", True),
        ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", True),
        ("0x0009", True),  # a suite tlsrec has no name for: nothing current
        ("TLS_RSA_WITH_AES_128_CBC_SHA", False),
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", False),
    ],
)
def test_obsolete_cipher_names(name, obsolete):
    assert obsolete_cipher(name) is obsolete


def test_aes_fallback_keeps_handshake_failed_and_judges_its_certificate():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    leaf = CertificateFacts.from_dict(
        {"subject": "CN=x", "not_after": "2020-01-01T00:00:00+00:00", "key_bits": 2048,
         "subject_cn": "srv.example.test", "issuer": None, "serial": None, "not_before": None,
         "self_signed": None, "key_type": None, "signature_algorithm_oid": None,
         "signature_hash": None, "eku": None, "server_auth": None, "sha1_thumbprint": "",
         "sha1_thumbprint_dialog": "", "sha256_fingerprint": ""}
    )  # fmt: skip
    obs = TargetObservation("srv.example.test", 3389, "127.0.0.1", now)
    obs.tls = TlsFacts(
        "SSL", "SSL", None, None, None, "boom", (), "srv.example.test",
        TlsFallbackFacts("TLSv1", "TLS_RSA_WITH_AES_128_CBC_SHA", chain=(leaf,)),
    )  # fmt: skip
    assert {f.id for f in judge_tls(obs, now)} == {"tls.handshake_failed", "cert.expired"}
