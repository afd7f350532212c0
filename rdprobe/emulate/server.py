"""asyncio listeners that play an emulator profile (the I/O around ``profiles``' behaviours).

Every read is bounded (a client silent for ``idle_timeout`` is dropped), input is framed with
``tpkt.split``, and no client input makes a handler raise: errors are logged and the connection
closed. TLS, when a profile serves it, runs over memory BIOs so the handshake outcome — including
OpenSSL's answer to bytes that are not TLS — goes to the client as OpenSSL produced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import os
import socket
import ssl
import struct
import sys
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

from rdprobe.emulate import profiles
from rdprobe.emulate.credssp_server import CredSspAcceptor
from rdprobe.emulate.profiles import Profile, Reply, Then
from rdprobe.protocol import tpkt, x224
from rdprobe.protocol.credssp import tsrequest_length
from rdprobe.protocol.endpoint import RDP_PORT
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 30.0
READ_SIZE = 4096
#: PDUs / reads handled per connection before the emulator gives up on it
MAX_EXCHANGES = 64
#: seconds between the last byte of a reply and an abortive close
RESET_DELAY = 0.05


class _Closed(Exception):
    """The client closed, or the connection ended by a reply."""


@dataclass
class EmulatorServer:
    """A running emulated listener. ``port`` is the bound port (useful with port 0)."""

    profile: Profile
    host: str
    port: int
    idle_timeout: float = IDLE_TIMEOUT
    connections: int = 0
    active: int = 0
    _server: asyncio.base_events.Server | None = None
    _udp: asyncio.DatagramTransport | None = None
    _tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def sockets(self) -> list:
        if self._server is not None:
            return list(self._server.sockets)
        if self._udp is not None:
            return [self._udp.get_extra_info("socket")]
        return []

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> EmulatorServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- TCP --------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        self.active += 1
        conn = _Connection(self, reader, writer)
        try:
            await conn.run(self.connections, self.active)
        except _Closed:
            pass
        except (TimeoutError, OSError, ProtocolError, ssl.SSLError) as exc:
            log.debug("%s: connection ended: %r", self.profile.name, exc)
        except asyncio.CancelledError:
            # only close() cancels handlers; ending quietly keeps asyncio's stream callback calm
            conn.abort()
        except Exception:  # a bug here must not take the listener down
            log.exception("%s: emulator error", self.profile.name)
        finally:
            self.active -= 1
            conn.finish()
            if task is not None:
                self._tasks.discard(task)


class _Connection:
    def __init__(
        self, server: EmulatorServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.behaviour = server.profile.behaviour
        self.reader = reader
        self.writer = writer
        self.buf = b""
        self.done = False
        self.request: x224.ConnectionRequest | None = None

    async def run(self, number: int, active: int) -> None:
        reply = self.behaviour.accepted(number, active)
        then = Then.READ if reply is None else await self.perform(reply)
        seen_request = False
        for _ in range(MAX_EXCHANGES):
            if then is Then.HOLD:
                await self.hold()
                return
            if then is Then.TLS:
                await self.serve_tls()
                return
            if not self.behaviour.tpkt:
                reply = self.behaviour.raw(await self.read_some())
            else:
                pdu = await self.read_pdu()
                if pdu is None:
                    reply = self.behaviour.raw(self.buf)
                elif not seen_request:
                    seen_request = True
                    self.request = x224.parse_request(pdu)
                    reply = self.behaviour.request(self.request)
                else:
                    reply = self.behaviour.data(pdu)
            then = await self.perform(reply)

    async def perform(self, reply: Reply) -> Then:
        """Send a reply, then close or reset if it says so; returns what comes next."""
        if reply.swallow:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(reply.swallow):
                    await self.reader.read(READ_SIZE)
        if reply.drip and reply.data:
            for i in range(len(reply.data)):
                self.writer.write(reply.data[i : i + 1])
                await self.writer.drain()
                await asyncio.sleep(reply.drip)
        elif reply.data:
            self.writer.write(reply.data)
            await self.writer.drain()
        if reply.then is Then.RESET:
            if reply.data:
                await asyncio.sleep(RESET_DELAY)
            self.abort()
            raise _Closed
        if reply.then is Then.CLOSE:
            raise _Closed
        return reply.then

    async def read_some(self) -> bytes:
        """One read under the idle timeout; _Closed on EOF or timeout. (asyncio.timeout, not
        wait_for, which made a task of every read: a fifth of the listener's CPU in a sweep.)"""
        try:
            async with asyncio.timeout(self.server.idle_timeout):
                data = await self.reader.read(READ_SIZE)
        except TimeoutError:
            raise _Closed from None
        if not data:
            raise _Closed
        return data

    async def read_pdu(self) -> bytes | None:
        """The next whole TPKT PDU, or None when the input is not TPKT (left in ``buf``)."""
        while True:
            try:
                pdu, self.buf = tpkt.split(self.buf)
                return pdu
            except NeedMoreData:
                pass
            except ProtocolError:
                return None
            self.buf += await self.read_some()

    async def hold(self) -> None:
        for _ in range(MAX_EXCHANGES * 16):
            await self.read_some()

    async def serve_tls(self) -> None:
        """TLS over memory BIOs; TPKT PDUs inside go to ``behaviour.tls_data``."""
        if not self.behaviour.tls:
            if not self.buf:
                await self.read_some()  # the client's ClientHello: TLS is not emulated here
            raise _Closed
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        versions = getattr(self.behaviour, "tls_versions", None)
        tls = _server_context(versions).wrap_bio(incoming, outgoing, server_side=True)
        incoming.write(self.buf)
        self.buf = b""
        for _ in range(MAX_EXCHANGES):
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self.flush(outgoing)
                incoming.write(await self.read_some())
            except ssl.SSLError as exc:
                log.debug("%s: TLS handshake failed: %s", self.server.profile.name, exc)
                await self.flush(outgoing)
                raise _Closed from None
        await self.flush(outgoing)
        plain = b""
        session = self.behaviour.credssp_session(self.request, _server_identity()[1])
        if session is not None:
            plain = await self.serve_credssp(tls, incoming, outgoing, session)
        for _ in range(MAX_EXCHANGES):
            try:
                pdu, plain = tpkt.split(plain)
            except NeedMoreData:
                try:
                    plain += tls.read(READ_SIZE)
                except ssl.SSLWantReadError:
                    incoming.write(await self.read_some())
                except ssl.SSLZeroReturnError:
                    raise _Closed from None
                continue
            reply = self.behaviour.tls_data(pdu)
            if reply.data:
                tls.write(reply.data)
                await self.flush(outgoing)
            if reply.then is Then.HOLD:
                await self.hold()
            if reply.then is not Then.READ:
                if reply.then is Then.RESET:
                    self.abort()
                raise _Closed

    async def serve_credssp(
        self,
        tls: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        session: CredSspAcceptor,
    ) -> bytes:
        """CredSSP inside TLS (TSRequests framed by their DER length, MS-CSSP 3.1.5) until the
        session has the credentials; returns the plain bytes that followed."""
        plain = b""
        for _ in range(MAX_EXCHANGES):
            try:
                total = tsrequest_length(plain)
                complete = len(plain) >= total
            except NeedMoreData:
                complete = False
            if not complete:
                try:
                    plain += tls.read(READ_SIZE)
                except ssl.SSLWantReadError:
                    incoming.write(await self.read_some())
                except ssl.SSLZeroReturnError:
                    raise _Closed from None
                continue
            answer, close = session.receive(plain[:total])
            plain = plain[total:]
            if answer:
                tls.write(answer)
                await self.flush(outgoing)
            if close:
                raise _Closed
            if session.done:
                return plain
        raise _Closed

    async def flush(self, outgoing: ssl.MemoryBIO) -> None:
        data = outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def abort(self) -> None:
        """Close with RST: SO_LINGER on, timeout 0 (works on Linux and Windows)."""
        if self.done:
            return
        self.done = True
        sock = self.writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.writer.close()


# -- UDP ------------------------------------------------------------------------------------------


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.server.connections += 1
        try:
            reply = self.server.profile.behaviour.datagram(data)
        except Exception:
            log.exception("%s: emulator error", self.server.profile.name)
            return
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %r", self.server.profile.name, exc)


# -- TLS certificate --------------------------------------------------------------------------------


@functools.cache
def _server_context(versions: tuple[str, str] | None = None) -> ssl.SSLContext:
    """The shared server context, or one serving only ``versions`` (lowest, highest, as
    "TLSv1" .. "TLSv1.3") with the same certificate. TLS 1.0/1.1 need OpenSSL's security
    level 0 (their handshakes sign with MD5/SHA-1)."""
    if versions is None:
        return _server_identity()[0]
    low, high = (ssl.TLSVersion[v.replace(".", "_")] for v in versions)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if low < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: serving them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version, ctx.maximum_version = low, high
    _load_identity(ctx)
    return ctx


@functools.cache
def _server_identity() -> tuple[ssl.SSLContext, bytes]:
    """A TLS server context with the process's self-signed certificate, and that certificate
    in DER (CredSSP binds the logon to its key)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_identity(ctx)
    return ctx, _identity()[1]


def _load_identity(ctx: ssl.SSLContext) -> None:
    """load_cert_chain reads only files: the PEM goes through a private temporary file."""
    with tempfile.TemporaryDirectory(prefix="rdprobe-emu-") as tmp:
        path = os.path.join(tmp, "cert.pem")
        with open(path, "wb") as fh:
            fh.write(_identity()[0])
        ctx.load_cert_chain(path)


@functools.cache
def _identity() -> tuple[bytes, bytes]:
    """A self-signed RSA-2048 certificate made once per process: (it and its key in PEM, the
    certificate in DER)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-RDPROBE-EMU")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=180))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem, cert.public_bytes(serialization.Encoding.DER)


# -- public API -----------------------------------------------------------------------------------


async def serve(
    profile: Profile | str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    udp: bool = False,
    idle_timeout: float = IDLE_TIMEOUT,
) -> EmulatorServer:
    """Start a listener playing ``profile``; port 0 picks a free port (see ``.port``).

    ``udp`` must match the profile's transport (a UDP profile is served over UDP either way).
    """
    if isinstance(profile, str):
        profile = profiles.get(profile)
    if udp and profile.transport != "udp":
        raise ValueError(f"profile {profile.name!r} is a {profile.transport} profile")
    em = EmulatorServer(profile, host, port, idle_timeout=idle_timeout)
    if profile.transport == "udp":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(em), local_addr=(host, port)
        )
        em._udp = transport
    else:
        em._server = await asyncio.start_server(em._handle, host, port)
    if profile.behaviour.tls:  # make the certificate before the first client
        await asyncio.to_thread(_server_context, getattr(profile.behaviour, "tls_versions", None))
    em.port = em.sockets[0].getsockname()[1]
    return em


async def serve_many(
    profiles_with_addresses: Iterable[tuple[Profile | str, str, int]],
) -> list[EmulatorServer]:
    """Start several listeners: (profile, host, port) each; all or none are started."""
    started: list[EmulatorServer] = []
    try:
        for profile, host, port in profiles_with_addresses:
            started.append(await serve(profile, host, port))
    except BaseException:
        await asyncio.gather(*(s.close() for s in started), return_exceptions=True)
        raise
    return started


def parse_listen(listen: str, default_port: int = RDP_PORT) -> tuple[str, int]:
    """'ADDR:PORT', '[v6]:PORT', 'ADDR' or ':PORT' → (host, port). ValueError when malformed."""
    host, port = listen, ""
    if listen.startswith("["):
        end = listen.find("]")
        if end < 0 or (end + 1 < len(listen) and listen[end + 1] != ":"):
            raise ValueError(f"bad listen address {listen!r}")
        host, port = listen[1:end], listen[end + 2 :]
    elif listen.count(":") == 1:
        host, port = listen.split(":")
    if not port:
        return host or "127.0.0.1", default_port
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad port in listen address {listen!r}")
    return host or "127.0.0.1", int(port)


async def run_emulator(profile_name: str, listen: str = f"127.0.0.1:{RDP_PORT}") -> None:
    """``rdprobe emulate``: serve one profile until cancelled; one line on stderr says where."""
    profile = profiles.get(profile_name)
    host, port = parse_listen(listen)
    em = await serve(profile, host, port)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"emulating {profile.name} on {profile.transport} {shown}:{em.port}: {profile.description}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await em.close()
