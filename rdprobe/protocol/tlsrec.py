"""TLS records and the handshake messages a probe reads in clear (RFC 5246 §6.2, §7.4; RFC 8446).

Used by the pcap reader (a server flight seen on the wire) and by a hand-built ClientHello probe
(servers offering only ciphers the local OpenSSL lacks still send ServerHello + Certificate).
TLS 1.3 encrypts the Certificate, so only ServerHello and alerts are visible there.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass

from rdprobe.protocol.errors import NeedMoreData, ProtocolError

RECORD_HEADER = 5
MAX_FRAGMENT = (1 << 14) + 2048  # RFC 5246 §6.2.3: TLSCiphertext.length <= 2^14 + 2048
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_SUPPORTED_VERSIONS = 43
EXT_RENEGOTIATION_INFO = 0xFF01


class ContentType(enum.IntEnum):
    change_cipher_spec = 20
    alert = 21
    handshake = 22
    application_data = 23


class HandshakeType(enum.IntEnum):
    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    encrypted_extensions = 8
    certificate = 11
    server_key_exchange = 12
    certificate_request = 13
    server_hello_done = 14


_CONTENT_TYPES = frozenset(int(c) for c in ContentType)

VERSION_NAMES = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}
VERSION_NAMES[0x0304] = "TLSv1.3"

CIPHER_NAMES = {
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
}


def version_name(version: int) -> str:
    return VERSION_NAMES.get(version, f"0x{version:04x}")


def cipher_name(suite: int) -> str:
    return CIPHER_NAMES.get(suite, f"0x{suite:04x}")


@dataclass(frozen=True)
class TlsRecord:
    content_type: int
    version: int
    fragment: bytes


@dataclass(frozen=True)
class Handshake:
    msg_type: int
    body: bytes


@dataclass(frozen=True)
class ServerHello:
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: tuple[tuple[int, bytes], ...]

    @property
    def version(self) -> int:
        """Negotiated version: supported_versions (RFC 8446 §4.2.1) overrides legacy_version."""
        for ext_type, data in self.extensions:
            if ext_type == EXT_SUPPORTED_VERSIONS and len(data) == 2:
                return int.from_bytes(data, "big")
        return self.legacy_version


@dataclass(frozen=True)
class Alert:
    level: int
    description: int


@dataclass(frozen=True)
class ServerFlight:
    """What the clear-text part of a server's first flight says."""

    server_hello: ServerHello | None
    certificates: tuple[bytes, ...]
    """DER certificates as sent, leaf first (RFC 5246 §7.4.2)."""
    alert: Alert | None
    server_hello_done: bool

    @property
    def version(self) -> str | None:
        return None if self.server_hello is None else version_name(self.server_hello.version)

    @property
    def cipher(self) -> str | None:
        sh = self.server_hello
        return None if sh is None else cipher_name(sh.cipher_suite)


def parse_record(data: bytes, offset: int = 0) -> tuple[TlsRecord, int]:
    """One TLSPlaintext record at *offset*; NeedMoreData when incomplete."""
    if len(data) - offset < RECORD_HEADER:
        raise NeedMoreData(RECORD_HEADER - (len(data) - offset), len(data))
    content_type, version, length = struct.unpack_from("!BHH", data, offset)
    if content_type not in _CONTENT_TYPES:
        raise ProtocolError(f"not a TLS record (content type {content_type})", offset)
    if version >> 8 != 3:
        raise ProtocolError(f"not a TLS record (version 0x{version:04x})", offset + 1)
    if length > MAX_FRAGMENT:
        raise ProtocolError(f"TLS record length {length} too large", offset + 3)
    end = offset + RECORD_HEADER + length
    if end > len(data):
        raise NeedMoreData(end - len(data), len(data))
    return TlsRecord(content_type, version, data[offset + RECORD_HEADER : end]), end


def parse_records(data: bytes) -> tuple[list[TlsRecord], int]:
    """All complete records at the start of *data* and the number of bytes they use."""
    records: list[TlsRecord] = []
    offset = 0
    while offset < len(data):
        try:
            record, offset = parse_record(data, offset)
        except NeedMoreData:
            break
        records.append(record)
    return records, offset


def parse_handshakes(data: bytes) -> tuple[list[Handshake], int]:
    """Complete handshake messages in a handshake byte stream (joined record fragments)."""
    messages: list[Handshake] = []
    offset = 0
    while len(data) - offset >= 4:
        msg_type = data[offset]
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        end = offset + 4 + length
        if end > len(data):
            break
        messages.append(Handshake(msg_type, data[offset + 4 : end]))
        offset = end
    return messages, offset


def parse_server_hello(body: bytes) -> ServerHello:
    """ServerHello body (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3)."""
    r = _Reader(body)
    legacy_version = r.u16()
    random = r.take(32)
    session_id = r.take(r.u8())
    cipher_suite = r.u16()
    compression = r.u8()
    extensions: list[tuple[int, bytes]] = []
    if r.remaining():
        ext = _Reader(r.take(r.u16()))
        while ext.remaining():
            ext_type = ext.u16()
            extensions.append((ext_type, ext.take(ext.u16())))
    return ServerHello(
        legacy_version, random, session_id, cipher_suite, compression, tuple(extensions)
    )


def parse_certificate(body: bytes) -> tuple[bytes, ...]:
    """TLS 1.0-1.2 Certificate body: certificate_list of 24-bit-length DER blobs (§7.4.2)."""
    r = _Reader(body)
    chain = _Reader(r.take(r.u24()))
    certificates = []
    while chain.remaining():
        certificates.append(chain.take(chain.u24()))
    return tuple(certificates)


def parse_server_flight(data: bytes) -> ServerFlight:
    """ServerHello, Certificate, ServerHelloDone and/or an alert from raw server bytes.

    Handshake messages may span records; the complete messages inside a cut-off last record
    are used, an incomplete message is ignored. Raises ProtocolError if *data* does not start
    with a TLS record (NeedMoreData if shorter than a record header).
    """
    records, used = parse_records(data)
    if not records and len(data) < RECORD_HEADER:
        raise NeedMoreData(RECORD_HEADER - len(data), len(data))
    tail = data[used:]
    if len(tail) >= RECORD_HEADER:  # a cut-off last record: its clear bytes still count
        try:
            parse_record(tail)
        except NeedMoreData:
            content_type, version = struct.unpack_from("!BH", tail)
            records.append(TlsRecord(content_type, version, tail[RECORD_HEADER:]))
        except ProtocolError:
            if not records:
                raise
    stream = b""
    alert = None
    for record in records:
        if record.content_type == ContentType.handshake:
            stream += record.fragment
        elif record.content_type == ContentType.alert and len(record.fragment) >= 2:
            alert = alert or Alert(record.fragment[0], record.fragment[1])
        elif record.content_type in (ContentType.change_cipher_spec, ContentType.application_data):
            break  # what follows is encrypted
    messages, _ = parse_handshakes(stream)
    server_hello = None
    certificates: tuple[bytes, ...] = ()
    done = False
    for message in messages:
        if message.msg_type == HandshakeType.server_hello and server_hello is None:
            server_hello = parse_server_hello(message.body)
        elif message.msg_type == HandshakeType.certificate and not certificates:
            certificates = parse_certificate(message.body)
        elif message.msg_type == HandshakeType.server_hello_done:
            done = True
    return ServerFlight(server_hello, certificates, alert, done)


DEFAULT_PROBE_CIPHERS = (
    0xC030, 0xC02F, 0xC028, 0xC027, 0xC014, 0xC013, 0x009F, 0x009E,
    0x009D, 0x009C, 0x003D, 0x003C, 0x0035, 0x002F, 0x000A, 0x0005, 0x0004,
)  # fmt: skip


def build_client_hello(
    version: int = 0x0303,
    ciphers: tuple[int, ...] = DEFAULT_PROBE_CIPHERS,
    *,
    server_name: str | None = None,
    random: bytes | None = None,
) -> bytes:
    """A TLS 1.0-1.2 ClientHello record (RFC 5246 §7.4.1.2) for a hand-built probe."""
    random = os.urandom(32) if random is None else random
    if len(random) != 32:
        raise ValueError("random must be 32 bytes")
    suites = b"".join(struct.pack("!H", c) for c in ciphers) + b"\x00\xff"  # + SCSV (RFC 5746)
    exts = _ext(EXT_SUPPORTED_GROUPS, _vec16(struct.pack("!HHH", 0x001D, 0x0017, 0x0018)))
    exts += _ext(EXT_EC_POINT_FORMATS, b"\x01\x00")
    if version >= 0x0303:
        algs = (0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0804, 0x0805, 0x0201, 0x0203)
        exts += _ext(EXT_SIGNATURE_ALGORITHMS, _vec16(b"".join(struct.pack("!H", a) for a in algs)))
    if server_name:
        name = server_name.encode("idna")
        exts += _ext(EXT_SERVER_NAME, _vec16(b"\x00" + _vec16(name)))
    body = struct.pack("!H", version) + random + b"\x00" + _vec16(suites) + b"\x01\x00"
    body += _vec16(exts)
    handshake = bytes([HandshakeType.client_hello]) + len(body).to_bytes(3, "big") + body
    record_version = min(version, 0x0301)
    return struct.pack("!BHH", ContentType.handshake, record_version, len(handshake)) + handshake


def _vec16(data: bytes) -> bytes:
    return struct.pack("!H", len(data)) + data


def _ext(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!H", ext_type) + _vec16(data)


class _Reader:
    """Bounds-checked cursor; every overrun is a ProtocolError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise ProtocolError(f"field of {n} bytes overruns its message", self.pos)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")
