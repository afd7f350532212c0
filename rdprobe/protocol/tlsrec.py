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
EXT_PADDING = 21
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


#: TLS alert descriptions (RFC 8446 §6, RFC 5246 §7.2; IANA "TLS Alerts").
ALERT_NAMES = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
    21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
    40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
    50: "decode_error", 51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 111: "certificate_unobtainable", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
}  # fmt: skip
ALERT_LEVELS = {1: "warning", 2: "fatal"}

#: Key-exchange groups (RFC 8446 §4.2.7, RFC 4492 §5.1.1, RFC 7919; IANA "TLS Supported Groups").
GROUP_NAMES = {
    0x0015: "secp224r1", 0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",
    0x001A: "brainpoolP256r1", 0x001B: "brainpoolP384r1", 0x001C: "brainpoolP512r1",
    0x001D: "x25519", 0x001E: "x448", 0x0100: "ffdhe2048", 0x0101: "ffdhe3072",
    0x0102: "ffdhe4096", 0x0103: "ffdhe6144", 0x0104: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768", 0x11EC: "X25519MLKEM768",
}  # fmt: skip
EXT_KEY_SHARE = 51


def alert_name(description: int) -> str:
    return ALERT_NAMES.get(description, f"alert_{description}")


def group_name(group: int) -> str:
    return GROUP_NAMES.get(group, f"0x{group:04x}")


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

    @property
    def name(self) -> str:
        """RFC 8446 name of the description, e.g. ``protocol_version``."""
        return alert_name(self.description)

    @property
    def level_name(self) -> str:
        return ALERT_LEVELS.get(self.level, f"level {self.level}")


@dataclass(frozen=True)
class ServerFlight:
    """What the clear-text part of a server's first flight says."""

    server_hello: ServerHello | None
    certificates: tuple[bytes, ...]
    """DER certificates as sent, leaf first (RFC 5246 §7.4.2)."""
    alert: Alert | None
    server_hello_done: bool
    #: ECDHE/DHE group: the TLS 1.3 key_share or the TLS 1.2 ServerKeyExchange named curve (a
    #: finite-field group without a name is "DH <bits> bits"); None when not visible or RSA.
    key_exchange: str | None = None

    @property
    def version(self) -> str | None:
        return None if self.server_hello is None else version_name(self.server_hello.version)

    @property
    def cipher(self) -> str | None:
        sh = self.server_hello
        return None if sh is None else cipher_name(sh.cipher_suite)


def parse_record(data: bytes | bytearray, offset: int = 0) -> tuple[TlsRecord, int]:
    """One TLSPlaintext record at *offset*; NeedMoreData when incomplete.

    ``data`` may be the live reader's growing bytearray (no copy of it per record); the
    fragment is always bytes.
    """
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
    return TlsRecord(content_type, version, bytes(data[offset + RECORD_HEADER : end])), end


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
    with a TLS record (NeedMoreData if shorter than a record header). One pass over the bytes
    (:class:`~rdprobe.protocol.tlsflight.FlightReader`, which reads a flight as it arrives).
    """
    from rdprobe.protocol.tlsflight import FlightReader

    if len(data) < RECORD_HEADER:
        raise NeedMoreData(RECORD_HEADER - len(data), len(data))
    reader = FlightReader(limit=len(data))
    reader.feed(data)
    return reader.finish()


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
    key_share: bytes | None = None,
) -> bytes:
    """A ClientHello record for a hand-built probe: TLS 1.0-1.2 (RFC 5246 §7.4.1.2), or TLS 1.3
    when *version* is 0x0304 (RFC 8446 §4.1.2: legacy_version 1.2, supported_versions 1.3 only,
    an X25519 key_share of *key_share*, random if None: no handshake follows, so any 32 bytes
    do). Padded past 512 bytes when between 256 and 511 (RFC 7685: old balancers hang there)."""
    random = os.urandom(32) if random is None else random
    if len(random) != 32:
        raise ValueError("random must be 32 bytes")
    tls13 = version >= 0x0304
    suites = b"".join(struct.pack("!H", c) for c in ciphers)
    if not tls13:
        suites += b"\x00\xff"  # renegotiation SCSV (RFC 5746)
    exts = _ext(EXT_SUPPORTED_GROUPS, _vec16(b"".join(struct.pack("!H", g) for g in _GROUPS)))
    exts += _ext(EXT_EC_POINT_FORMATS, b"\x01\x00")
    if version >= 0x0303:
        algs = b"".join(struct.pack("!H", a) for a in _SIGNATURE_ALGORITHMS)
        exts += _ext(EXT_SIGNATURE_ALGORITHMS, _vec16(algs))
    if server_name:
        name = server_name.encode("idna")
        exts += _ext(EXT_SERVER_NAME, _vec16(b"\x00" + _vec16(name)))
    session_id = b""
    if tls13:
        share = os.urandom(32) if key_share is None else key_share
        if len(share) != 32:
            raise ValueError("an X25519 key share is 32 bytes")
        exts += _ext(EXT_SUPPORTED_VERSIONS, b"\x02\x03\x04")  # RFC 8446 §4.2.1
        exts += _ext(EXT_KEY_SHARE, _vec16(struct.pack("!H", 0x001D) + _vec16(share)))
        session_id = random[::-1]  # compatibility mode (RFC 8446 §D.4): any 32 bytes
    legacy = min(version, 0x0303)
    head = struct.pack("!H", legacy) + random + bytes([len(session_id)]) + session_id
    head += _vec16(suites) + b"\x01\x00"
    size = 4 + len(head) + 2 + len(exts)  # the handshake message
    if 256 <= size < 512:
        exts += _ext(EXT_PADDING, bytes(max(0, 512 - size - 4)))
    body = head + _vec16(exts)
    handshake = bytes([HandshakeType.client_hello]) + len(body).to_bytes(3, "big") + body
    record_version = min(version, 0x0301)
    return struct.pack("!BHH", ContentType.handshake, record_version, len(handshake)) + handshake


#: Offered groups: X25519, P-256, P-384, P-521, X448, ffdhe2048/3072 (RFC 8446 §4.2.7).
_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E, 0x0100, 0x0101)
#: RSA PKCS#1, ECDSA, RSA-PSS (rsae and pss), Ed25519, SHA-1 last (RFC 8446 §4.2.3).
_SIGNATURE_ALGORITHMS = (
    0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806,
    0x0809, 0x080A, 0x080B, 0x0807, 0x0201, 0x0203,
)  # fmt: skip


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
