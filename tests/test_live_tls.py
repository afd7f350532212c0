"""Live TLS upgrade, TLS version matrix and NLA probe against asyncio servers on 127.0.0.1.

Each server reads a 19-byte X.224 Connection Request, answers a Connection Confirm selecting
PROTOCOL_SSL, then does TLS (and, for NLA, answers one TSRequest). Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from certgen import self_signed
from cryptography.hazmat.primitives import serialization

from rdprobe.analysis.facts import NlaFacts
from rdprobe.live import tls
from rdprobe.live.nla import nla_probe
from rdprobe.protocol import tlsrec
from rdprobe.protocol.credssp import TSRequest

X224_REQUEST = bytes.fromhex("030000130ee00000000000010008000b000000")
X224_CONFIRM_SSL = bytes.fromhex("03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 01 00 00 00")
VECTORS = json.loads((Path(__file__).parent / "vectors" / "windows-handshakes.json").read_text())
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    key, cert = self_signed("probe-test.local", serial=7)
    folder = tmp_path_factory.mktemp("tlscert")
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return folder / "c.pem", folder / "k.pem", cert.public_bytes(serialization.Encoding.DER)


def server_context(cert_files, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(cert_files[0], cert_files[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    return context


@contextlib.asynccontextmanager
async def rdp_tls_server(context: ssl.SSLContext, after_tls=None):
    """X.224 request → confirm(SSL) → TLS → optional after_tls(reader, writer)."""
    tasks: set[asyncio.Task] = set()

    async def handle(reader, writer):
        tasks.add(asyncio.current_task())
        try:
            await asyncio.wait_for(reader.readexactly(len(X224_REQUEST)), TIMEOUT)
            writer.write(X224_CONFIRM_SSL)
            await writer.drain()
            await asyncio.wait_for(writer.start_tls(context), TIMEOUT)
            if after_tls is not None:
                await asyncio.wait_for(after_tls(reader, writer), TIMEOUT)
            else:
                await asyncio.wait_for(reader.read(1), TIMEOUT)  # until the client closes
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def open_stream():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(X224_REQUEST)
        await writer.drain()
        confirm = await reader.readexactly(len(X224_CONFIRM_SSL))
        assert confirm == X224_CONFIRM_SSL
        return reader, writer

    try:
        yield open_stream
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(server.wait_closed(), TIMEOUT)


@pytest.mark.skipif(not ssl.HAS_TLSv1_3, reason="the local OpenSSL offers no TLS 1.3")
def test_a_handshake_offering_every_version_settles_the_newest_ones():
    """Agreeing on TLS 1.2 shows 1.2 accepted and 1.3 refused; of 1.0 and 1.1 it says nothing,
    so they are the versions probed while it runs; a failed handshake settles nothing."""
    assert tls.seen_in_handshake("TLSv1.2") == {"TLSv1.2": "accepted", "TLSv1.3": "refused"}
    assert tls.seen_in_handshake("TLSv1.3") == {"TLSv1.3": "accepted"}
    assert tls.seen_in_handshake("TLSv1") == {
        "TLSv1": "accepted", "TLSv1.1": "refused", "TLSv1.2": "refused", "TLSv1.3": "refused"
    }  # fmt: skip
    assert tls.seen_in_handshake(None) == {} and tls.seen_in_handshake("SSLv3") == {}
    assert set(tls.PROBED_EARLY) == set(tls.VERSIONS) - set(tls.seen_in_handshake("TLSv1.2"))


def test_confirm_bytes_select_ssl():
    assert len(X224_CONFIRM_SSL) == 19 and X224_CONFIRM_SSL[11] == 0x02  # RDP_NEG_RSP
    assert X224_CONFIRM_SSL[-4:] == b"\x01\x00\x00\x00"  # selectedProtocol PROTOCOL_SSL


@pytest.mark.parametrize(
    ("pinned", "name"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
async def test_upgrade_and_matrix(cert_files, pinned, name):
    async with rdp_tls_server(server_context(cert_files, pinned)) as open_stream:
        reader, writer = await open_stream()
        try:
            result = await tls.upgrade(
                reader, writer, server_hostname="probe-test.local", timeout=TIMEOUT
            )
        finally:
            await writer_close(writer)
        assert result.error is None
        assert result.version == name
        assert result.cipher and result.cipher_bits >= 128
        assert result.chain_der == (cert_files[2],)
        json.dumps(result.to_dict())
        matrix = await tls.version_matrix(open_stream, timeout=TIMEOUT)
    assert set(matrix) == {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
    assert matrix[name] == "accepted"
    assert [v for v, r in matrix.items() if r == "accepted"] == [name]
    assert all(r in ("refused", "accepted") for r in matrix.values())


@pytest.mark.parametrize("pinned", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
async def test_matrix_sees_old_versions_a_local_client_would_not_speak(cert_files, pinned):
    """The pinned probes are hand-built hellos: a TLS 1.0 or 1.1-only OpenSSL server is seen
    accepting its version whatever the local client's security level allows."""
    try:
        context = server_context(cert_files, pinned)
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"local OpenSSL cannot serve {pinned.name}: {exc}")
    async with rdp_tls_server(context) as open_stream:
        matrix = await tls.version_matrix(open_stream, timeout=TIMEOUT)
    name = {ssl.TLSVersion.TLSv1: "TLSv1", ssl.TLSVersion.TLSv1_1: "TLSv1.1"}[pinned]
    assert matrix == {v: "accepted" if v == name else "refused" for v in tls.VERSIONS}


async def test_tls13_hello_retry_request_counts_as_accepted(cert_files):
    """An OpenSSL TLS 1.3 server without X25519 answers the probe's X25519 share with a
    HelloRetryRequest (RFC 8446 §4.1.4): it has chosen TLS 1.3."""
    context = server_context(cert_files, ssl.TLSVersion.TLSv1_3)
    context.set_ecdh_curve("secp384r1")  # OpenSSL 3: the only group offered, TLS 1.3 too
    seen = []

    async def open_and_watch():
        reader, writer = await open_stream()
        real_read = reader.read

        async def read(n=-1):
            chunk = await real_read(n)
            seen.append(chunk)
            return chunk

        reader.read = read  # type: ignore[method-assign]
        return reader, writer

    async with rdp_tls_server(context) as open_stream:
        result = await tls.probe_version(open_and_watch, "TLSv1.3", timeout=TIMEOUT)
    hello = tlsrec.parse_server_flight(b"".join(seen)).server_hello
    assert hello is not None and hello.version == 0x0304
    assert hello.random.hex() == (
        "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
    )  # the HelloRetryRequest random: the HRR path was taken
    assert result == "accepted"


async def test_tls10_only_server(cert_files):
    try:
        context = server_context(cert_files, ssl.TLSVersion.TLSv1)
    except (ValueError, ssl.SSLError) as exc:
        pytest.skip(f"local OpenSSL cannot serve TLS 1.0: {exc}")
    async with rdp_tls_server(context) as open_stream:
        matrix = await tls.version_matrix(open_stream, timeout=TIMEOUT)
        reader, writer = await open_stream()
        try:
            result = await tls.upgrade(reader, writer, server_hostname=None, timeout=TIMEOUT)
        finally:
            await writer_close(writer)
    assert matrix == {
        "TLSv1": "accepted",
        "TLSv1.1": "refused",
        "TLSv1.2": "refused",
        "TLSv1.3": "refused",
    }
    assert result.version == "TLSv1" and result.chain_der == (cert_files[2],)


async def test_hand_built_client_hello_gets_server_flight(cert_files):
    async with rdp_tls_server(server_context(cert_files, ssl.TLSVersion.TLSv1_2)) as open_stream:
        reader, writer = await open_stream()
        try:
            writer.write(tlsrec.build_client_hello(0x0303))
            data = b""
            flight = None
            for _ in range(50):
                chunk = await asyncio.wait_for(reader.read(4096), TIMEOUT)
                if not chunk:
                    break
                data += chunk
                flight = tlsrec.parse_server_flight(data)
                if flight.server_hello_done:
                    break
        finally:
            await writer_close(writer)
    assert flight is not None and flight.version == "TLSv1.2"
    assert flight.certificates == (cert_files[2],)


async def test_unreachable_stream_and_non_tls_peer_are_results():
    async def failing_open():
        raise ConnectionRefusedError("refused by test")

    matrix = await tls.version_matrix(failing_open, timeout=1.0)
    assert all(r.startswith("error: ") for r in matrix.values())

    async def plain(reader, writer):
        await reader.readexactly(len(X224_REQUEST))
        writer.write(X224_CONFIRM_SSL + b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(X224_REQUEST)
        await reader.readexactly(len(X224_CONFIRM_SSL))
        result = await tls.upgrade(reader, writer, server_hostname=None, timeout=TIMEOUT)
        await writer_close(writer)
    finally:
        server.close()
        await server.wait_closed()
    assert result.version is None and result.error


def win10_challenge_tsrequest() -> bytes:
    vector = next(v for v in VECTORS if v["id"] == "redemption-win10-nla-ntlm-WIN10CGR")
    pdu = next(p for p in vector["pdus"] if p["what"] == "credssp_tsrequest_ntlm_challenge")
    return bytes.fromhex(pdu["hex"])


def nla_answer(reply: bytes, received: list[bytes]):
    async def after_tls(reader, writer):
        received.append(await reader.read(4096))
        for start in range(0, len(reply), 50):  # dribble it in pieces
            writer.write(reply[start : start + 50])
            await writer.drain()
        await reader.read(1)

    return after_tls


async def test_nla_probe_decodes_windows_challenge(cert_files):
    received: list[bytes] = []
    context = server_context(cert_files, ssl.TLSVersion.TLSv1_2)
    async with rdp_tls_server(context, nla_answer(win10_challenge_tsrequest(), received)) as op:
        reader, writer = await op()
        upgraded = await tls.upgrade(reader, writer, server_hostname=None, timeout=TIMEOUT)
        assert upgraded.error is None
        result = await nla_probe(reader, writer, timeout=TIMEOUT)
    assert result.error is None, result.error
    assert result.tsrequest_version == 6
    assert result.challenge.nb_computer == "WIN10CGR"
    assert result.challenge.dns_computer == "WIN10CGR.proxykdc.lab"
    assert result.challenge.version_text == "10.0.17763"
    assert result.challenge.timestamp.isoformat().startswith("2019-09-18T11:02:36")
    sent = TSRequest.parse(received[0])
    assert sent.version == 6 and sent.nego_tokens[0].startswith(b"NTLMSSP\x00\x01\x00\x00\x00")
    assert writer.is_closing()
    facts = NlaFacts("HYBRID", result.challenge, result.tsrequest_version, result.error)
    assert json.loads(json.dumps(facts.to_dict()))["challenge"]["nb_computer"] == "WIN10CGR"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"garbage that is no DER at all", "not a TSRequest"),
        (b"\x30\x82\x01\x00" + b"\x00" * 10, "closed"),
        (b"", "closed"),
    ],
)
async def test_nla_probe_bad_replies_are_errors(cert_files, reply, expected):
    context = server_context(cert_files, ssl.TLSVersion.TLSv1_2)
    async with rdp_tls_server(context, nla_close_after(reply)) as open_stream:
        reader, writer = await open_stream()
        await tls.upgrade(reader, writer, server_hostname=None, timeout=TIMEOUT)
        result = await nla_probe(reader, writer, timeout=TIMEOUT)
    assert result.challenge is None and expected in result.error


async def test_nla_probe_silent_server_times_out(cert_files):
    context = server_context(cert_files, ssl.TLSVersion.TLSv1_2)

    async def silent(reader, writer):
        await asyncio.sleep(3)

    async with rdp_tls_server(context, silent) as open_stream:
        reader, writer = await open_stream()
        await tls.upgrade(reader, writer, server_hostname=None, timeout=TIMEOUT)
        result = await nla_probe(reader, writer, timeout=0.5)
    assert result.challenge is None and "timeout" in result.error


def nla_close_after(reply: bytes):
    async def after_tls(reader, writer):
        await reader.read(4096)
        writer.write(reply)
        await writer.drain()

    return after_tls


async def writer_close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


@pytest.mark.servers
async def test_freerdp_shadow_nla_identity(tmp_path):
    """FreeRDP's shadow server: host name for every NTLM name, fixed 6.1.7601, its clock."""
    import socket

    from rig import require_binaries
    from rig.ports import loopback_address
    from rig.shadow import start_shadow

    require_binaries("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash")
    with start_shadow(tmp_path, address=loopback_address()) as srv:

        async def open_stream():
            reader, writer = await asyncio.open_connection(srv.host, srv.port)
            writer.write(X224_REQUEST)
            await writer.drain()
            confirm = await asyncio.wait_for(reader.readexactly(19), TIMEOUT)
            assert confirm[11] == 0x02 and confirm[15] & 0x02  # NEG_RSP selecting HYBRID
            return reader, writer

        reader, writer = await open_stream()
        upgraded = await tls.upgrade(reader, writer, server_hostname=srv.host, timeout=TIMEOUT)
        assert upgraded.error is None and upgraded.chain_der
        before = datetime.now(UTC)
        result = await nla_probe(reader, writer, timeout=TIMEOUT)
        matrix = await tls.version_matrix(open_stream, timeout=TIMEOUT)
    host = socket.gethostname().split(".")[0]
    challenge = result.challenge
    assert result.error is None and result.tsrequest_version is not None
    assert challenge.nb_computer == host.upper() and challenge.dns_computer == host.lower()
    assert challenge.version_text == "6.1.7601"
    assert abs(challenge.timestamp - before) < timedelta(minutes=1)
    assert matrix["TLSv1.2"] == "accepted"
