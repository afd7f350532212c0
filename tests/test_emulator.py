"""The emulator: every profile on 127.0.0.1, driven with plain asyncio streams and datagrams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import time
from collections.abc import AsyncIterator

import pytest

from conftest import VECTORS
from rdprobe.emulate import profiles, server, vectors
from rdprobe.emulate.profiles import PROFILES
from rdprobe.protocol import rdpsec, tpkt, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.x224 import FailureCode as F
from rdprobe.protocol.x224 import Protocol as P

SHARED = {v["id"]: v for v in VECTORS}
LEGACY_CC = bytes.fromhex("0300000b06d00000123400")
T = 3.0  # bound on every network wait in these tests


def shared_pdu(vector_id: str, what: str) -> bytes:
    (hexstr,) = [p["hex"] for p in SHARED[vector_id]["pdus"] if p["what"] == what]
    return bytes.fromhex(hexstr)


@contextlib.asynccontextmanager
async def emulator(name: str, **kw: object) -> AsyncIterator[server.EmulatorServer]:
    em = await server.serve(profiles.get(name), "127.0.0.1", 0, **kw)
    try:
        yield em
    finally:
        await asyncio.wait_for(em.close(), T)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), T)


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    """One whole TPKT PDU (IncompleteReadError if the server closes first)."""
    header = await asyncio.wait_for(reader.readexactly(4), T)
    length = tpkt.frame_length(header)
    return header + await asyncio.wait_for(reader.readexactly(length - 4), T)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything until the server closes."""
    return await asyncio.wait_for(reader.read(), T)


async def ask(port: int, requested: int | None) -> bytes:
    reader, writer = await connect(port)
    try:
        writer.write(x224.build_request(cookie="test", requested=requested))
        return await read_pdu(reader)
    finally:
        writer.close()


# -- registry and packaged vectors ----------------------------------------------------------------


def test_registry_names_descriptions_and_lookup() -> None:
    assert len(PROFILES) >= 30
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.description and "\n" not in profile.description
        assert profile.transport in ("tcp", "udp")
        for vid in profile.vectors:
            assert vid in profile.description or vid in vectors.all_vectors()
            vectors.vector(vid)  # packaged
    with pytest.raises(KeyError, match="win2003-legacy"):
        profiles.get("no-such-profile")


def test_packaged_vectors_equal_the_shared_ones_with_provenance() -> None:
    packaged = vectors.all_vectors()
    compared = 0
    for vid, vec in packaged.items():
        assert vec.source and vec.server and vec.confidence
        if vid not in SHARED:
            continue
        assert vec.source == SHARED[vid]["source"] and vec.server == SHARED[vid]["server"]
        for what, data in vec.pdus.items():
            assert data == shared_pdu(vid, what)
            compared += 1
    assert compared >= 15


def test_recorded_udp_bytes_match_the_capture() -> None:
    scapy_all = pytest.importorskip("scapy.all")
    pytest.importorskip("scapy.layers.inet6")
    path = "/work/shared/captures/zeek/rdpeudp-handshake-success.pcap"
    try:
        packets = scapy_all.rdpcap(path)
    except FileNotFoundError:
        pytest.skip("shared capture not present")
    vec = vectors.vector(vectors.RDPEUDP)
    assert bytes(packets[0][scapy_all.UDP].payload) == vec.pdu("rdpudp_syn")
    assert bytes(packets[1][scapy_all.UDP].payload) == vec.pdu("rdpudp_synack")


# -- negotiation matrix ---------------------------------------------------------------------------

RDP, SSL, NLA, LEG = 0, int(P.SSL), int(P.SSL | P.HYBRID), None


def rsp(selected: int, flags: int) -> tuple:
    return ("rsp", selected, flags)


def fail(code: int) -> tuple:
    return ("fail", code)


LEGACY = ("legacy",)
STANDARD_ONLY = {RDP: rsp(0, 0), SSL: fail(F.SSL_NOT_ALLOWED_BY_SERVER), NLA: fail(2), LEG: LEGACY}
W2012 = {RDP: rsp(0, 0), SSL: rsp(1, 0x0F), NLA: rsp(2, 0x0F), LEG: LEGACY}
MATRIX = {
    "win2003-legacy": {RDP: LEGACY, SSL: LEGACY, NLA: LEGACY, LEG: LEGACY},
    "win2000-legacy": {RDP: LEGACY, SSL: LEGACY, NLA: LEGACY, LEG: LEGACY},
    "win2008-x509": {RDP: rsp(0, 0), SSL: rsp(1, 9), NLA: rsp(2, 9), LEG: LEGACY},
    "win2008r2-tls": {
        RDP: fail(F.SSL_REQUIRED_BY_SERVER),
        SSL: rsp(1, 9),
        NLA: rsp(2, 9),
        LEG: fail(F.SSL_REQUIRED_BY_SERVER),
    },
    "win2012-negotiate": W2012,
    "win-tls-selfsigned": W2012,
    "reset-after-confirm": W2012,
    "win10-nla": {
        RDP: fail(F.HYBRID_REQUIRED_BY_SERVER),
        SSL: fail(F.HYBRID_REQUIRED_BY_SERVER),
        NLA: rsp(2, 0x1F),
        LEG: fail(F.HYBRID_REQUIRED_BY_SERVER),
    },
    "rdp-only": STANDARD_ONLY,
    "rdp-proprietary": STANDARD_ONLY,
    "rdp-x509": STANDARD_ONLY,
    "corrupt-certificate": STANDARD_ONLY,
    "ssl-cert-missing": {
        RDP: rsp(0, 0),
        SSL: fail(F.SSL_CERT_NOT_ON_SERVER),
        NLA: fail(F.SSL_CERT_NOT_ON_SERVER),
        LEG: LEGACY,
    },
    "xrdp-rdsaad": {RDP: rsp(0, 1), SSL: rsp(1, 1), NLA: rsp(1, 1), LEG: LEGACY},
}


def outcome(pdu: bytes) -> tuple:
    cc = x224.parse_confirm(pdu)
    if cc.negotiation is None:
        assert pdu == LEGACY_CC
        return LEGACY
    if isinstance(cc.negotiation, x224.NegotiationFailure):
        return fail(cc.negotiation.code)
    return rsp(cc.negotiation.selected, cc.negotiation.flags)


@pytest.mark.parametrize("name", sorted(MATRIX))
async def test_negotiation_matrix(name: str) -> None:
    expected = MATRIX[name]
    async with emulator(name) as em:
        answers = await asyncio.gather(*(ask(em.port, req) for req in expected))
    got = {req: outcome(pdu) for req, pdu in zip(expected, answers, strict=True)}
    assert got == expected
    for pdu in answers:
        assert x224.parse_confirm(pdu).src_ref == 0x1234


@pytest.mark.parametrize(
    ("name", "requested", "vector_id", "what"),
    [
        ("win2003-legacy", None, "redemption-w2003-rdpsec", "x224_cc"),
        ("win2008-x509", SSL, "redemption-w2008-tls-10.10.47.35", "x224_cc"),
        ("win2008r2-tls", SSL, "redemption-w2008-tls-WIN-1R5JGCUI6TK", "x224_cc"),
        ("win2012-negotiate", SSL, "redemption-w2012-tls-RED-TEST-W2K12", "x224_cc"),
        ("win10-nla", 0x0B, "zeek-hybrid-ex-CLK-456040-D", "x224_cc"),
        ("rdp-only", SSL, "zeek-rdp-neg-failure-SSL_NOT_ALLOWED_BY_SERVER", "x224_cc_neg_failure"),
        ("rdp-only", RDP, "zeek-rdp-proprietary-cert", "x224_cc"),
        ("rdp-x509", RDP, "zeek-rdp-x509-temporary-chain", "x224_cc"),
    ],
)
async def test_confirms_are_the_recorded_bytes(
    name: str, requested: int | None, vector_id: str, what: str
) -> None:
    async with emulator(name) as em:
        assert await ask(em.port, requested) == shared_pdu(vector_id, what)


async def test_win10_nla_answers_like_the_spec_and_the_stated_facts() -> None:
    async with emulator("win10-nla") as em:
        hybrid = await ask(em.port, int(P.SSL | P.HYBRID))
        refused = await ask(em.port, SSL)
    stated = vectors.vector(vectors.WIN10_NLA).extra["stated"]
    cc = x224.parse_confirm(hybrid).negotiation
    assert (cc.selected, cc.flags) == (stated["selected_protocol"], stated["neg_rsp_flags"])
    assert refused == bytes.fromhex("030000130ed000001234000300080005000000")


async def test_xrdp_profile_reproduces_the_measured_answers() -> None:
    vec = vectors.vector(vectors.XRDP)
    async with emulator("xrdp-rdsaad") as em:
        for req_text, what in vec.extra["answers"].items():
            requested = None if req_text == "none" else int(req_text, 16)
            reader, writer = await connect(em.port)
            writer.write(x224.build_request(cookie="test", requested=requested))
            assert await read_pdu(reader) == vec.pdu(what), req_text
            if what == "mcs_dpu_rdsaad":
                assert await read_all(reader) == b""  # then closes
            writer.close()


# -- MCS Connect Initial -> recorded MCS Connect Response ----------------------------------------

W2003_CI = shared_pdu("redemption-w2003-rdpsec", "mcs_ci")


@pytest.mark.parametrize(
    ("name", "requested", "vector_id"),
    [
        ("win2003-legacy", None, "redemption-w2003-rdpsec"),
        ("win2003-legacy", SSL, "redemption-w2003-rdpsec"),
        ("win2000-legacy", None, "redemption-w2000-rdpsec"),
        ("win2008-x509", None, "redemption-w2008-rdpsec-x509-a"),
        ("rdp-only", RDP, "zeek-rdp-proprietary-cert"),
        ("rdp-proprietary", RDP, "zeek-rdp-proprietary-cert"),
        ("rdp-x509", RDP, "zeek-rdp-x509-temporary-chain"),
        ("ssl-cert-missing", RDP, "zeek-rdp-proprietary-cert"),
        ("win2012-negotiate", None, "zeek-rdp-proprietary-cert"),
    ],
)
async def test_connect_initial_gets_the_recorded_connect_response(
    name: str, requested: int | None, vector_id: str
) -> None:
    async with emulator(name) as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=requested))
        x224.parse_confirm(await read_pdu(reader))
        writer.write(W2003_CI)
        assert await read_pdu(reader) == shared_pdu(vector_id, "mcs_cr")
        writer.close()


async def test_other_data_after_the_confirm_closes() -> None:
    async with emulator("win2003-legacy") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test"))
        await read_pdu(reader)
        writer.write(x224.build_data(b"\x7f\x66\x00"))  # not a Connect-Initial
        assert await read_all(reader) == b""
        writer.close()


def proprietary_signature_ok(mcs_cr: bytes) -> bool:
    """The proprietary certificate inside a Connect Response verifies (rdpsec's check, itself
    tested against every Windows vector in test_rdpsec.py)."""
    sig_at = vectors.signature_offset(mcs_cr)
    cert_at = mcs_cr.rfind(struct.pack("<III", 1, 1, 1), 0, sig_at)
    return rdpsec.verify_signature(mcs_cr[cert_at : sig_at - 4], mcs_cr[sig_at : sig_at + 64])


async def test_corrupt_certificate_flips_one_signature_byte() -> None:
    recorded = shared_pdu("zeek-rdp-proprietary-cert", "mcs_cr")
    async with emulator("corrupt-certificate") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=RDP))
        await read_pdu(reader)
        writer.write(W2003_CI)
        served = await read_pdu(reader)
        writer.close()
    assert len(served) == len(recorded)
    diffs = [i for i in range(len(served)) if served[i] != recorded[i]]
    assert diffs == [vectors.signature_offset(recorded)]
    assert proprietary_signature_ok(recorded)
    assert proprietary_signature_ok(shared_pdu("redemption-w2003-rdpsec", "mcs_cr"))
    assert not proprietary_signature_ok(served)


# -- misbehaviours --------------------------------------------------------------------------------


async def test_accept_reset_resets() -> None:
    async with emulator("accept-reset") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        with pytest.raises(ConnectionResetError):
            await read_all(reader)
        writer.close()


async def test_accept_close_closes_without_a_byte() -> None:
    async with emulator("accept-close") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        assert await read_all(reader) == b""
        writer.close()


async def test_reset_after_confirm() -> None:
    async with emulator("reset-after-confirm") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        assert outcome(await read_pdu(reader)) == rsp(1, 0x0F)
        with pytest.raises(ConnectionResetError):
            await read_all(reader)
        writer.close()


async def test_silent_never_answers_and_stays_open() -> None:
    async with emulator("silent") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.7)
        assert em.active == 1
        writer.close()


async def test_silent_drops_an_idle_client_after_the_idle_timeout() -> None:
    async with emulator("silent", idle_timeout=0.3) as em:
        reader, writer = await connect(em.port)
        assert await read_all(reader) == b""
        writer.close()


async def test_drip_arrives_whole_but_slowly() -> None:
    async with emulator("drip") as em:
        reader, writer = await connect(em.port)
        start = time.monotonic()
        writer.write(x224.build_request(cookie="test"))
        first = await asyncio.wait_for(reader.read(100), T)
        assert first == LEGACY_CC[:1]
        got = first
        while len(got) < len(LEGACY_CC):
            got += await asyncio.wait_for(reader.read(100), T)
        elapsed = time.monotonic() - start
        writer.close()
    assert got == LEGACY_CC
    assert 0.4 * (len(LEGACY_CC) - 1) - 0.2 <= elapsed < 8


async def test_oversized_announces_65535_and_sends_less() -> None:
    async with emulator("oversized") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        got = await asyncio.wait_for(reader.read(100), T)
        assert got[:4] == b"\x03\x00\xff\xff" and 4 < len(got) < 100
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.5)
        writer.close()


async def test_truncated_is_half_a_confirm_then_close() -> None:
    async with emulator("truncated") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        got = await read_all(reader)
        writer.close()
    assert got == shared_pdu("redemption-w2012-tls-RED-TEST-W2K12", "x224_cc")[:9]
    with pytest.raises(ProtocolError):
        tpkt.split(got)


async def test_garbage_is_not_tpkt() -> None:
    async with emulator("garbage") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        got = await read_all(reader)
        writer.close()
    assert len(got) == 48
    with pytest.raises(ProtocolError) as err:
        tpkt.frame_length(got)
    assert type(err.value) is ProtocolError


async def test_busy_resets_beyond_the_concurrent_limit() -> None:
    async with emulator("busy") as em:
        held = []
        for _ in range(2):
            reader, writer = await connect(em.port)
            writer.write(x224.build_request(cookie="test", requested=SSL))
            assert outcome(await read_pdu(reader)) == rsp(1, 0x0F)
            held.append(writer)
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        with pytest.raises(ConnectionResetError):
            await read_all(reader)
        writer.close()
        for w in held:
            w.close()
        for _ in range(100):  # the server notices the closes
            if em.active == 0:
                break
            await asyncio.sleep(0.02)
        assert outcome(await ask(em.port, SSL)) == rsp(1, 0x0F)


async def test_flapping_resets_every_third_connection() -> None:
    async with emulator("flapping") as em:
        seen = []
        for _ in range(6):
            try:
                seen.append(outcome(await ask(em.port, SSL))[0])
            except ConnectionResetError:
                seen.append("reset")
    assert seen == ["rsp", "rsp", "reset", "rsp", "rsp", "reset"]


# -- another service on the port ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "greeting"),
    [
        ("ssh", b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n"),
        ("smtp", b"220 mail.example.test ESMTP"),
        ("ftp", b"220 "),
        ("pop3", b"+OK "),
        ("imap", b"* OK "),
        ("vnc", b"RFB 003.008\n"),
    ],
)
async def test_banner_services_talk_first(name: str, greeting: bytes) -> None:
    async with emulator(name) as em:
        reader, writer = await connect(em.port)
        first = await asyncio.wait_for(reader.read(200), T)  # before we send anything
        assert first.startswith(greeting)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        rest = await read_all(reader)
        writer.close()
    with pytest.raises(ProtocolError):
        tpkt.frame_length(first + rest)


async def test_http_answers_400_with_server_header() -> None:
    async with emulator("http") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        got = await read_all(reader)
        writer.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nServer: Microsoft-IIS/10.0" in head
    assert f"Content-Length: {len(body)}".encode() in head


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def test_tls_direct_is_a_real_tls_server() -> None:
    async with emulator("tls-direct") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        got = await read_all(reader)
        writer.close()
        assert not got.startswith(b"\x03\x00")  # whatever OpenSSL says, it is not X.224
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", em.port, ssl=client_context()), T
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
    assert b"WIN-RDPROBE-EMU" in der


async def test_win_tls_selfsigned_serves_mcs_inside_tls() -> None:
    async with emulator("win-tls-selfsigned") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        assert outcome(await read_pdu(reader)) == rsp(1, 0x0F)
        await asyncio.wait_for(writer.start_tls(client_context()), T)
        writer.write(W2003_CI)
        assert await read_pdu(reader) == shared_pdu("redemption-w2012-tls-RED-TEST-W2K12", "mcs_cr")
        writer.close()


async def test_tls_client_hello_to_a_profile_without_tls_is_closed() -> None:
    async with emulator("win2012-negotiate") as em:
        reader, writer = await connect(em.port)
        writer.write(x224.build_request(cookie="test", requested=SSL))
        await read_pdu(reader)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.wait_for(writer.start_tls(client_context()), T)
        writer.close()


# -- hostile clients ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.0\r\n\r\n",
        b"\x03\x00\xff\xff" + b"\x00" * 100,  # announces more than it sends, then closes
        b"\x03\x00\x00\x05\x00",  # TPKT too short for X.224
        x224.build_data(b"\x7f\x65\x00"),  # a DT where a CR belongs
        b"\x03\x00\x00\x0b\x06\xe0\x00\x00",  # truncated CR
    ],
)
async def test_hostile_input_closes_and_the_listener_survives(payload: bytes) -> None:
    async with emulator("win2012-negotiate") as em:
        reader, writer = await connect(em.port)
        writer.write(payload)
        if payload.startswith(b"\x03\x00\xff\xff") or payload.endswith(b"\x00\x00"):
            writer.write_eof()
        assert await read_all(reader) == b""
        writer.close()
        assert outcome(await ask(em.port, SSL)) == rsp(1, 0x0F)


async def test_many_concurrent_clients() -> None:
    async with emulator("win2012-negotiate") as em:
        answers = await asyncio.gather(*(ask(em.port, SSL) for _ in range(50)))
        assert em.connections == 50
    assert set(answers) == {shared_pdu("redemption-w2012-tls-RED-TEST-W2K12", "x224_cc")}


# -- RDP over UDP ---------------------------------------------------------------------------------


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queue.put_nowait(data)


async def udp_exchange(port: int, datagram: bytes, wait: float = T) -> bytes:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Collect, remote_addr=("127.0.0.1", port)
    )
    try:
        transport.sendto(datagram)
        return await asyncio.wait_for(proto.queue.get(), wait)
    finally:
        transport.close()


def udp_syn(isn: int = 0x11223344) -> bytes:
    head = struct.pack(">IHH", 0xFFFFFFFF, 64, 0x0001) + struct.pack(">IHH", isn, 1232, 1232)
    return head.ljust(1232, b"\x00")


async def test_rdpudp_answers_a_syn_with_a_synack() -> None:
    async with emulator("rdpudp", udp=True) as em:
        answer = await udp_exchange(em.port, udp_syn())
    ack, window, flags = struct.unpack_from(">IHH", answer)
    _isn, up, down = struct.unpack_from(">IHH", answer, 8)
    assert ack == 0x11223344
    assert flags & 0x0005 == 0x0005 and not flags & vectors.UDP_FLAG_SYNEX
    assert window > 0 and 1132 <= up <= 1232 and 1132 <= down <= 1232
    assert len(answer) == 1232
    async with emulator("rdpudp", udp=True) as em:  # a 1132-byte MTU SYN: no larger answer
        assert len(await udp_exchange(em.port, udp_syn()[:1132])) == 1132


async def test_rdpudp_answers_the_recorded_syn_with_the_recorded_synack() -> None:
    vec = vectors.vector(vectors.RDPEUDP)
    async with emulator("rdpudp") as em:
        assert await udp_exchange(em.port, vec.pdu("rdpudp_syn")) == vec.pdu("rdpudp_synack")


async def test_rdpudp_ignores_what_is_not_a_syn() -> None:
    async with emulator("rdpudp") as em:
        with pytest.raises(asyncio.TimeoutError):
            await udp_exchange(em.port, b"\x00" * 8, wait=0.3)
        with pytest.raises(asyncio.TimeoutError):  # unpadded: answering would amplify
            await udp_exchange(em.port, udp_syn()[:16], wait=0.3)
        with pytest.raises(asyncio.TimeoutError):  # a SYN+ACK is not a SYN
            await udp_exchange(em.port, vectors.vector(vectors.RDPEUDP).pdu("rdpudp_synack"), 0.3)


# -- API used by the CLI --------------------------------------------------------------------------


async def test_serve_rejects_udp_for_a_tcp_profile_and_serve_many_starts_all() -> None:
    with pytest.raises(ValueError):
        await server.serve("http", "127.0.0.1", 0, udp=True)
    started = await server.serve_many([("http", "127.0.0.1", 0), ("ssh", "127.0.0.1", 0)])
    try:
        assert len({s.port for s in started}) == 2 and all(s.port for s in started)
        assert all(s.sockets for s in started)
    finally:
        for s in started:
            await s.close()


def test_parse_listen() -> None:
    assert server.parse_listen("127.0.0.2:3390") == ("127.0.0.2", 3390)
    assert server.parse_listen("[::1]:3390") == ("::1", 3390)
    assert server.parse_listen("127.0.0.2") == ("127.0.0.2", 3389)
    assert server.parse_listen(":0") == ("127.0.0.1", 0)
    for bad in ("host:port", "1.2.3.4:70000", "[::1", "[::1]x"):
        with pytest.raises(ValueError):
            server.parse_listen(bad)


async def test_run_emulator_reports_its_address_and_serves(capfd: pytest.CaptureFixture) -> None:
    task = asyncio.create_task(server.run_emulator("win2003-legacy", "127.0.0.1:0"))
    line = ""
    for _ in range(100):
        await asyncio.sleep(0.02)
        line = capfd.readouterr().err
        if line:
            break
    port = int(line.split("127.0.0.1:")[1].split(":")[0])
    assert line.startswith("emulating win2003-legacy on tcp 127.0.0.1:")
    assert await ask(port, None) == LEGACY_CC
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, T)
    with pytest.raises(KeyError):
        await server.run_emulator("nope", "127.0.0.1:0")


def test_demo_profiles_are_known_and_ordered() -> None:
    from rdprobe.emulate.demo import DEMO

    names = [n for n, _ in DEMO]
    assert names[0] == "win2003-legacy" and len(names) == len(set(names)) >= 15
    demo = [(name, profiles.get(name).description) for name in names]  # each one is known
    json.dumps(demo)
