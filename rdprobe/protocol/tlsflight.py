"""A server's first TLS flight read as it arrives, in one pass (RFC 5246 §6.2, §7.4; RFC 8446 §4).

:class:`FlightReader` takes the server's bytes in pieces of any size (a capture's TCP segments, a
socket's reads) and keeps only the unfinished record and the unfinished handshake message, so the
work is linear in the bytes however they are cut (issue 14: re-parsing the whole flight on every
segment was quadratic). It stops at the first byte that is not clear handshake (ChangeCipherSpec,
application data), at ``limit`` bytes, or when the flight is complete: ServerHelloDone, an
alert, or a TLS 1.3 ServerHello (what follows is encrypted).
"""

from __future__ import annotations

from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.tlsrec import (
    _CONTENT_TYPES,
    EXT_KEY_SHARE,
    MAX_FRAGMENT,
    RECORD_HEADER,
    Alert,
    ContentType,
    HandshakeType,
    ServerFlight,
    ServerHello,
    group_name,
    parse_certificate,
    parse_server_hello,
)

__all__ = ["FlightReader", "key_exchange_of"]

#: Default bound on the bytes read of one flight (a certificate chain is a few KB).
FLIGHT_LIMIT = 64 * 1024


class FlightReader:
    """Feed the server's bytes with :meth:`feed`; :attr:`complete` says when to stop."""

    __slots__ = (
        "_hs",
        "_rec",
        "alert",
        "certificates",
        "done",
        "encrypted",
        "error",
        "fed",
        "key_exchange",
        "limit",
        "records",
        "server_hello",
    )

    def __init__(self, limit: int = FLIGHT_LIMIT) -> None:
        self.limit = limit
        self._rec = bytearray()  # the unfinished record
        self._hs = bytearray()  # the unfinished handshake message(s)
        self.fed = 0
        self.records = 0
        self.server_hello: ServerHello | None = None
        self.certificates: tuple[bytes, ...] = ()
        self.alert: Alert | None = None
        self.done = False  # ServerHelloDone seen
        self.encrypted = False  # ChangeCipherSpec or application data: the clear part is over
        self.key_exchange: str | None = None
        self.error: str | None = None  # a record or message that does not parse (reading stopped)

    @property
    def complete(self) -> bool:
        """The flight says all it will say in clear, or ``limit`` bytes were read."""
        return self.fed >= self.limit or self.alert is not None or self._over()

    def _over(self) -> bool:
        """Nothing more to read in clear (bytes already fed after an alert are still read)."""
        sh = self.server_hello
        return (
            self.done
            or self.encrypted
            or self.error is not None
            or (sh is not None and sh.version >= 0x0304)
        )

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """More server bytes. Raises ProtocolError only when the first record is not TLS."""
        if self.complete or not data:
            return
        room = self.limit - self.fed
        if len(data) > room:
            data = data[:room]
        self.fed += len(data)
        rec = self._rec
        rec += data
        pos = 0
        n = len(rec)
        while n - pos >= RECORD_HEADER and not self._over():
            ctype = rec[pos]
            version = (rec[pos + 1] << 8) | rec[pos + 2]
            length = (rec[pos + 3] << 8) | rec[pos + 4]
            bad = (
                f"not a TLS record (content type {ctype})"
                if ctype not in _CONTENT_TYPES
                else f"not a TLS record (version 0x{version:04x})"
                if version >> 8 != 3
                else f"TLS record length {length} too large"
                if length > MAX_FRAGMENT
                else None
            )
            if bad is not None:
                if not self.records:
                    raise ProtocolError(bad, pos)
                self.error = bad
                break
            end = pos + RECORD_HEADER + length
            if end > n:
                break
            self.records += 1
            self._record(ctype, rec[pos + RECORD_HEADER : end])
            pos = end
        del rec[:pos]
        if self._over():
            rec.clear()

    def finish(self) -> ServerFlight:
        """No more bytes will come: the clear bytes of a cut-off last record count too."""
        rec = self._rec
        if not self._over() and len(rec) > RECORD_HEADER and rec[0] == ContentType.handshake:
            self._record(rec[0], rec[RECORD_HEADER:])
        rec.clear()
        return self.flight()

    def flight(self) -> ServerFlight:
        return ServerFlight(
            self.server_hello, self.certificates, self.alert, self.done, self.key_exchange
        )

    # -- internals -----------------------------------------------------------------------------

    def _record(self, ctype: int, fragment: bytearray) -> None:
        if ctype == ContentType.handshake:
            hs = self._hs
            hs += fragment
            off = 0
            while len(hs) - off >= 4:
                length = int.from_bytes(hs[off + 1 : off + 4], "big")
                end = off + 4 + length
                if end > len(hs):
                    break
                try:
                    self._message(hs[off], bytes(hs[off + 4 : end]))
                except ProtocolError as exc:
                    self.error = f"handshake message {hs[off]}: {exc.reason}"
                    hs.clear()
                    return
                off = end
            del hs[:off]
        elif ctype == ContentType.alert:
            if len(fragment) >= 2 and self.alert is None:
                self.alert = Alert(fragment[0], fragment[1])
        else:  # change_cipher_spec, application_data: what follows is encrypted
            self.encrypted = True

    def _message(self, msg_type: int, body: bytes) -> None:
        if msg_type == HandshakeType.server_hello and self.server_hello is None:
            self.server_hello = parse_server_hello(body)
            for ext_type, data in self.server_hello.extensions:
                if ext_type == EXT_KEY_SHARE and len(data) >= 2:  # RFC 8446 §4.2.8
                    self.key_exchange = group_name(int.from_bytes(data[:2], "big"))
        elif msg_type == HandshakeType.certificate and not self.certificates:
            if self.server_hello is None or self.server_hello.version < 0x0304:
                self.certificates = parse_certificate(body)
        elif msg_type == HandshakeType.server_key_exchange and self.key_exchange is None:
            self.key_exchange = key_exchange_of(body, self.server_hello)
        elif msg_type == HandshakeType.server_hello_done:
            self.done = True


def key_exchange_of(body: bytes, hello: ServerHello | None) -> str | None:
    """The group of a TLS 1.0-1.2 ServerKeyExchange (RFC 8422 §5.4, RFC 5246 §7.4.3)."""
    from rdprobe.protocol.tlsrec import cipher_name

    suite = cipher_name(hello.cipher_suite) if hello is not None else ""
    ecdhe = "_ECDHE_" in suite or (not suite.startswith("TLS_DHE") and body[:1] == b"\x03")
    if ecdhe:
        if len(body) >= 3 and body[0] == 3:  # curve_type named_curve
            return group_name(int.from_bytes(body[1:3], "big"))
        return None
    if len(body) >= 2:  # ServerDHParams: dh_p first
        p_len = int.from_bytes(body[:2], "big")
        if 0 < p_len <= len(body) - 2:
            return f"DH {p_len * 8} bits"
    return None
