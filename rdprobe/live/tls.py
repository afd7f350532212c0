"""TLS on an RDP connection after the X.224 exchange (MS-RDPBCGR 5.4.5.1), asyncio.

The probe never verifies the certificate while connecting: it records what the server sends
and leaves judgement to rdprobe.analysis.certificate. OpenSSL's security level is lowered only
in contexts that must reach TLS 1.0/1.1 (legacy=True).
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rdprobe.live.timing import CLOSE_LIMIT_S, Deadline, close_writer
from rdprobe.protocol import tlsprobe, tlsrec
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

SSL_OP_LEGACY_SERVER_CONNECT = 0x4
"""OpenSSL option; without it old Windows fails with "unsafe legacy renegotiation"."""
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
PROBE_CIPHERS = "DEFAULT"
"""OpenSSL's default list: unlike Python's, it keeps RSA key exchange and CBC-SHA suites,
which Windows servers up to 2012 R2 may offer alone; the security level stays as configured."""

VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_LOCALLY_AVAILABLE = {
    "TLSv1": ssl.HAS_TLSv1,
    "TLSv1.1": ssl.HAS_TLSv1_1,
    "TLSv1.2": ssl.HAS_TLSv1_2,
    "TLSv1.3": ssl.HAS_TLSv1_3,
}
ACCEPTED, REFUSED = tlsprobe.ACCEPTED, tlsprobe.REFUSED
READ_SIZE = 16 * 1024
#: The versions probed while the stage's own handshake runs: one offering every version agrees on
#: one of these only with a server from before TLS 1.2, so whatever it agrees on, these are asked.
PROBED_EARLY: tuple[str, ...] = ("TLSv1", "TLSv1.1")


def seen_in_handshake(version: str | None) -> dict[str, str]:
    """What a handshake offering every version this OpenSSL speaks (``upgrade``'s default
    context) says of the versions, when it agreed on *version*: that one is accepted, and every
    newer one it offered is refused, for a server agrees on the newest version both ends speak
    (RFC 8446 section 4.2.1, RFC 5246 appendix E.1). Of older versions it says nothing."""
    names = list(VERSIONS)
    if version not in VERSIONS:
        return {}
    newer = names[names.index(version) + 1 :]
    return {version: ACCEPTED} | {n: REFUSED for n in newer if _LOCALLY_AVAILABLE[n]}


OpenStream = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@functools.lru_cache(maxsize=16)
def make_context(
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    max_version: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    *,
    legacy: bool = False,
) -> ssl.SSLContext:
    """A client context that accepts any certificate; legacy=True reaches TLS 1.0/1.1.

    Shared, not built per connection (building one costs about a TLS handshake's CPU in a
    sweep): callers must not change it. A shared client context resumes no session by itself,
    so every connection still does a full handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(LEGACY_CIPHERS if legacy else PROBE_CIPHERS)
    if legacy:
        context.options |= SSL_OP_LEGACY_SERVER_CONNECT
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: probing them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = min_version
        context.maximum_version = max_version
    return context


@dataclass(frozen=True)
class TlsResult:
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    chain_der: tuple[bytes, ...]
    """Certificates as sent, leaf first (only the leaf on Pythons that cannot give more)."""
    error: str | None
    alert: tlsrec.Alert | None = None
    """The alert the server ended the handshake with, as OpenSSL reported it."""

    def to_dict(self) -> dict[str, Any]:
        import hashlib

        return {
            "version": self.version,
            "cipher": self.cipher,
            "cipher_bits": self.cipher_bits,
            "chain_sha256": [hashlib.sha256(c).hexdigest() for c in self.chain_der],
            "error": self.error,
        }


async def upgrade(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    server_hostname: str | None,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> TlsResult:
    """Start TLS on *writer* (right after a Connection Confirm that selected SSL or HYBRID).

    The default context offers TLS 1.0 to 1.3 at OpenSSL security level 0, so that even a
    TLS 1.0-only listener shows its certificate: this connection observes, it carries no
    secret. On success the same reader/writer pair carries TLS; on failure the error is in
    the result and the caller closes the writer. Never raises for what the server does.
    """
    del reader  # start_tls keeps using the same StreamReader
    if context is None:
        context = make_context(ssl.TLSVersion.TLSv1, ssl.TLSVersion.MAXIMUM_SUPPORTED, legacy=True)
    failure = await _start_tls(writer, context, server_hostname, timeout)
    if failure is not None:
        return TlsResult(None, None, None, (), one_line(failure), received_alert(failure))
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return TlsResult(None, None, None, (), "no TLS session after start_tls")
    cipher = ssl_object.cipher()
    return TlsResult(
        version=ssl_object.version(),
        cipher=None if cipher is None else cipher[0],
        cipher_bits=None if cipher is None else cipher[2],
        chain_der=peer_chain(ssl_object),
        error=None,
    )


async def _start_tls(
    writer: asyncio.StreamWriter, context: ssl.SSLContext, hostname: str | None, timeout: float
) -> BaseException | None:
    try:
        async with asyncio.timeout(timeout):  # no task per handshake, unlike wait_for
            await writer.start_tls(
                context, server_hostname=hostname or None, ssl_handshake_timeout=timeout or None
            )
    except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return exc
    return None


_OPENSSL_ALERT = re.compile(r"\b(?:SSLV3|TLSV1|TLSV13)_(?:ALERT_)?([A-Z_]+)")
_ALERT_BY_NAME = {name: code for code, name in tlsrec.ALERT_NAMES.items()}


def received_alert(exc: BaseException) -> tlsrec.Alert | None:
    """The alert an OpenSSL handshake error says the server sent, else None.

    OpenSSL names a received alert ``SSLV3_ALERT_<NAME>``, ``TLSV1_ALERT_<NAME>``,
    ``TLSV13_ALERT_<NAME>`` or ``TLSV1_<NAME>`` (ssl/ssl_err.c); errors it raises itself have
    other names (WRONG_VERSION_NUMBER ...). A received alert that ends a handshake is fatal.
    """
    if not isinstance(exc, ssl.SSLError):
        return None
    for text in (getattr(exc, "reason", None) or "", str(exc)):
        for match in _OPENSSL_ALERT.finditer(text.upper()):
            name = match.group(1).lower().replace("cancelled", "canceled")
            if name in _ALERT_BY_NAME:
                return tlsrec.Alert(2, _ALERT_BY_NAME[name])
    return None


def peer_chain(ssl_object: ssl.SSLObject) -> tuple[bytes, ...]:
    """The server's certificates as sent, without verification."""
    getter = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            # before 3.13 the private getter yields _ssl.Certificate objects: their PEM
            # (public_bytes' default) back to the DER that was sent, by the public ssl helper
            out = [
                c if isinstance(c, bytes) else ssl.PEM_cert_to_DER_cert(c.public_bytes())
                for c in chain
            ]
            if out:
                return tuple(out)
        except (AttributeError, ValueError, ssl.SSLError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


async def probe_version(
    open_stream: OpenStream, name: str, *, timeout: float, deadline: Deadline | None = None
) -> str:
    """One fresh connection, one hand-built ClientHello offering only TLS version *name*, the
    server's clear answer up to its ServerHello or alert (rdprobe.protocol.tlsprobe), then a
    close: no key exchange and no local TLS library, so any version can be probed and a probe
    costs both ends a fraction of a handshake. Every step (connect, answer, close) takes the
    smaller of *timeout* (1 s for the close) and what is left of *deadline*."""
    if name not in tlsprobe.PINNED_VERSIONS:
        return f"error: unknown TLS version {name}"
    clock = deadline or Deadline(3 * timeout + CLOSE_LIMIT_S)
    try:
        async with asyncio.timeout(clock.limit(timeout, f"tls_versions: {name} connect")):
            reader, writer = await open_stream()
    except Exception as exc:  # the caller's connect/negotiate step; any failure is a result
        return f"error: {one_line(exc)}"
    try:
        step = clock.limit(timeout, f"tls_versions: {name} hello")
        return await _pinned_answer(reader, writer, name, step)
    finally:
        await close_writer(writer, clock.limit(CLOSE_LIMIT_S, f"tls_versions: {name} close"))


async def _pinned_answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str, timeout: float
) -> str:
    answer = tlsprobe.PinnedAnswer(name)
    try:
        async with asyncio.timeout(timeout):  # the whole exchange
            writer.write(tlsprobe.pinned_hello(name))
            await writer.drain()
            while True:
                chunk = await reader.read(READ_SIZE)
                if not chunk:
                    return answer.closed()
                verdict = answer.feed(chunk)
                if verdict is not None:
                    return verdict
    except TimeoutError:
        return "error: timeout"
    except (OSError, EOFError, asyncio.IncompleteReadError):
        return answer.closed()  # a reset: Windows and others say no to a version that way


async def version_matrix(
    open_stream: OpenStream, *, timeout: float, deadline: Deadline | None = None
) -> dict[str, str]:
    """For TLS 1.0, 1.1, 1.2 and 1.3: "accepted", "refused" or "error: …" (probe_version).
    Each version gets its own connection from *open_stream*; they run at once, each step cut
    by *deadline*."""
    names = list(VERSIONS)
    results = await asyncio.gather(
        *(probe_version(open_stream, n, timeout=timeout, deadline=deadline) for n in names)
    )
    return dict(zip(names, results, strict=True))


LEGACY_HELLO_VERSION = 0x0301  # TLS 1.0: what Windows Server 2003/2008 SCHANNEL speaks
LEGACY_HELLO_SUITES = (0x0005, 0x0004, 0x000A, 0x002F, 0x0035)
"""RC4-128-SHA, RC4-128-MD5, 3DES-EDE-CBC-SHA, AES128-SHA, AES256-SHA (RFC 5246 App. A.5)."""
LEGACY_HELLO_READ_LIMIT = 16 * 1024


@dataclass(frozen=True)
class FallbackResult:
    """The clear-text server flight answering a hand-built TLS 1.0 ClientHello."""

    version: str | None
    cipher: str | None
    cipher_code: int | None
    chain_der: tuple[bytes, ...]
    alert: tlsrec.Alert | None
    server_hello_done: bool
    bytes_read: int
    error: str | None
    """Why no complete flight was read (timeout, closed, not TLS...), else None."""


class FlightReader:
    """The clear part of a server flight, fed as bytes arrive (RFC 5246 §6.2.1, §7.4).

    Incremental and linear in bytes: a complete record is parsed once and dropped, a handshake
    message is cut out of the joined fragments once complete, and a byte-at-a-time drip costs a
    header check per byte, never a re-parse of what came before. Semantics follow
    tlsrec.parse_server_flight (the pcap path): the first ServerHello, Certificate and alert
    count, reading stops at ChangeCipherSpec or application data, and finish() uses the clear
    bytes of a cut-off last record.
    """

    def __init__(self) -> None:
        self._pending = bytearray()  # bytes of a record not yet complete
        self._handshake = bytearray()  # joined handshake fragments not yet cut into messages
        self._records = 0
        self._stopped = False  # encrypted bytes or garbage after good records: ignore the rest
        self.server_hello: tlsrec.ServerHello | None = None
        self.certificates: tuple[bytes, ...] = ()
        self.alert: tlsrec.Alert | None = None
        self.server_hello_done = False

    @property
    def complete(self) -> bool:
        return self.server_hello_done or self.alert is not None

    def flight(self) -> tlsrec.ServerFlight | None:
        if not self._records and self.server_hello is None:
            return None
        return tlsrec.ServerFlight(
            self.server_hello, self.certificates, self.alert, self.server_hello_done
        )

    def feed(self, data: bytes) -> None:
        """Raises ProtocolError when the first bytes are no TLS record or a handshake message
        does not parse."""
        if self._stopped:
            return
        self._pending += data
        offset = 0
        while not self._stopped:
            try:
                record, offset = tlsrec.parse_record(self._pending, offset)
            except NeedMoreData:
                break
            except ProtocolError:
                if not self._records:
                    raise
                self._stopped = True
                break
            self._on_record(record.content_type, record.fragment)
        del self._pending[:offset]

    def finish(self) -> None:
        """The stream ended: a cut-off last record's clear bytes still count."""
        if self._stopped or len(self._pending) < tlsrec.RECORD_HEADER:
            return
        content_type = self._pending[0]
        try:
            tlsrec.parse_record(bytes(self._pending))
        except NeedMoreData:
            self._on_record(content_type, bytes(self._pending[tlsrec.RECORD_HEADER :]))
        except ProtocolError:
            pass
        self._pending.clear()

    def _on_record(self, content_type: int, fragment: bytes) -> None:
        self._records += 1
        if content_type == tlsrec.ContentType.handshake:
            self._handshake += fragment
            self._cut_messages()
        elif content_type == tlsrec.ContentType.alert and len(fragment) >= 2:
            self.alert = self.alert or tlsrec.Alert(fragment[0], fragment[1])
        elif content_type in (
            tlsrec.ContentType.change_cipher_spec,
            tlsrec.ContentType.application_data,
        ):
            self._stopped = True  # what follows is encrypted

    def _cut_messages(self) -> None:
        buf, offset = self._handshake, 0
        while len(buf) - offset >= 4:
            end = offset + 4 + int.from_bytes(buf[offset + 1 : offset + 4], "big")
            if end > len(buf):
                break
            self._on_message(buf[offset], bytes(buf[offset + 4 : end]))
            offset = end
        del buf[:offset]

    def _on_message(self, msg_type: int, body: bytes) -> None:
        if msg_type == tlsrec.HandshakeType.server_hello and self.server_hello is None:
            self.server_hello = tlsrec.parse_server_hello(body)
        elif msg_type == tlsrec.HandshakeType.certificate and not self.certificates:
            self.certificates = tlsrec.parse_certificate(body)
        elif msg_type == tlsrec.HandshakeType.server_hello_done:
            self.server_hello_done = True


async def legacy_hello(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    timeout: float,
    server_name: str | None = None,
    limit: int = LEGACY_HELLO_READ_LIMIT,
) -> FallbackResult:
    """Send a TLS 1.0 ClientHello offering RC4/3DES/AES-CBC suites and read the server's
    answer in clear (RFC 5246 §7.4.1.2-§7.4.5): until ServerHelloDone, an alert, *limit* bytes,
    the end of the stream or *timeout* (for the whole exchange). No key exchange follows: this
    shows what a server the local OpenSSL cannot talk to offers. Never raises for what the
    server does; the caller closes the writer. The bytes go through a FlightReader, so a server
    that drips its flight costs a little work per byte, never a re-parse of the whole flight.
    """
    end = Deadline(timeout)
    read = 0
    error: str | None = None
    flight = FlightReader()
    try:
        writer.write(
            tlsrec.build_client_hello(
                LEGACY_HELLO_VERSION, LEGACY_HELLO_SUITES, server_name=server_name
            )
        )
        await asyncio.wait_for(writer.drain(), end.remaining())
        while read < limit:
            if end.expired:
                error = "timeout"
                break
            chunk = await asyncio.wait_for(reader.read(limit - read), end.remaining())
            if not chunk:
                error = "connection closed by the server"
                break
            read += len(chunk)
            flight.feed(chunk)
            if flight.complete:
                break
        else:
            error = f"no ServerHelloDone in the first {limit} bytes"
    except ProtocolError as exc:
        error = f"not TLS: {exc}"
    except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
        error = one_line(exc)
    if not flight.complete:
        try:
            flight.finish()
        except ProtocolError as exc:
            error = error or f"not TLS: {exc}"
    if flight.complete:
        error = None
    sh = flight.server_hello
    got = flight.flight()
    return FallbackResult(
        version=got.version if got else None,
        cipher=got.cipher if got else None,
        cipher_code=None if sh is None else sh.cipher_suite,
        chain_der=flight.certificates,
        alert=flight.alert,
        server_hello_done=flight.server_hello_done,
        bytes_read=read,
        error=error,
    )


def one_line(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError | ConnectionResetError):
        return f"connection closed by the server ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
