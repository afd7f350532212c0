"""Security headers and the Security Exchange PDU of Standard RDP Security.

MS-RDPBCGR 2.2.8.1.1.2.1 (TS_SECURITY_HEADER: flags, flagsHi), 2.2.8.1.1.2.2 (non-FIPS: plus an
8-byte dataSignature), 2.2.8.1.1.2.3 (FIPS: plus length 0x10, version 1, padlen, dataSignature),
2.2.1.10.1 (TS_SECURITY_PACKET: the encrypted client random and 8 zero bytes of padding).
Which header a PDU carries depends on the encryption level and method (5.3.2); the caller says
which one through ``HeaderKind``. Little-endian throughout.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rdprobe.protocol.errors import ProtocolError

FIPS_HEADER_LENGTH = 0x10
TSFIPS_VERSION1 = 0x01
CLIENT_RANDOM_PADDING = 8


class SecurityFlag(enum.IntFlag):
    """flags of TS_SECURITY_HEADER (2.2.8.1.1.2.1)."""

    SEC_EXCHANGE_PKT = 0x0001
    SEC_TRANSPORT_REQ = 0x0002
    SEC_TRANSPORT_RSP = 0x0004
    SEC_ENCRYPT = 0x0008
    SEC_RESET_SEQNO = 0x0010
    SEC_IGNORE_SEQNO = 0x0020
    SEC_INFO_PKT = 0x0040
    SEC_LICENSE_PKT = 0x0080
    SEC_LICENSE_ENCRYPT = 0x0200  # _CS from the client, _SC from the server: the same bit
    SEC_REDIRECTION_PKT = 0x0400
    SEC_SECURE_CHECKSUM = 0x0800
    SEC_AUTODETECT_REQ = 0x1000
    SEC_AUTODETECT_RSP = 0x2000
    SEC_HEARTBEAT = 0x4000
    SEC_FLAGSHI_VALID = 0x8000


class HeaderKind(enum.Enum):
    """Which security header the negotiated level and method put on a PDU."""

    NONE = "none"  # Enhanced RDP Security / level NONE, on PDUs that need no header
    BASIC = "basic"
    NON_FIPS = "non-fips"
    FIPS = "fips"


@dataclass(frozen=True)
class SecurityHeader:
    flags: int
    flags_hi: int = 0
    signature: bytes = b""  # the 8-byte dataSignature (MAC), when the header has one
    fips_padding: int = 0  # FIPS header padlen

    @property
    def flag_names(self) -> list[str]:
        return [f.name for f in SecurityFlag if f & self.flags and f.name]

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & SecurityFlag.SEC_ENCRYPT)


def build_header(
    kind: HeaderKind, flags: int, *, signature: bytes = b"", fips_padding: int = 0
) -> bytes:
    if kind is HeaderKind.NONE:
        return b""
    basic = struct.pack("<HH", flags & 0xFFFF, 0)
    if kind is HeaderKind.BASIC:
        return basic
    signature = signature.ljust(8, b"\x00")[:8]
    if kind is HeaderKind.NON_FIPS:
        return basic + signature
    return (
        basic + struct.pack("<HBB", FIPS_HEADER_LENGTH, TSFIPS_VERSION1, fips_padding) + signature
    )


def parse_header(data: bytes, kind: HeaderKind) -> tuple[SecurityHeader, bytes]:
    """(header, the bytes after it). A non-FIPS or FIPS header is read in full only when its
    SEC_ENCRYPT flag is set: servers send unencrypted PDUs (licensing at low levels) with the
    basic header alone."""
    if kind is HeaderKind.NONE:
        return SecurityHeader(0), bytes(data)
    if len(data) < 4:
        raise ProtocolError(f"security header needs 4 bytes, got {len(data)}", 0)
    flags, flags_hi = struct.unpack_from("<HH", data, 0)
    if kind is HeaderKind.BASIC or not flags & SecurityFlag.SEC_ENCRYPT:
        return SecurityHeader(flags, flags_hi), bytes(data[4:])
    if kind is HeaderKind.NON_FIPS:
        if len(data) < 12:
            raise ProtocolError("non-FIPS security header needs 12 bytes", 4)
        return SecurityHeader(flags, flags_hi, bytes(data[4:12])), bytes(data[12:])
    if len(data) < 16:
        raise ProtocolError("FIPS security header needs 16 bytes", 4)
    length, version, padding = struct.unpack_from("<HBB", data, 4)
    if length != FIPS_HEADER_LENGTH or version != TSFIPS_VERSION1:
        raise ProtocolError(f"FIPS header length {length} version {version}, expected 16/1", 4)
    if padding > 7:
        raise ProtocolError(f"FIPS padlen {padding} exceeds a block", 7)
    return SecurityHeader(flags, flags_hi, bytes(data[8:16]), padding), bytes(data[16:])


# --- Security Exchange PDU (2.2.1.10.1) -----------------------------------------------------


@dataclass(frozen=True)
class SecurityExchange:
    flags: int
    encrypted_client_random: bytes  # little-endian, without the 8 padding bytes


def build_security_exchange(encrypted_random: bytes, flags: int = 0) -> bytes:
    """TS_SECURITY_PACKET; ``length`` counts the random and its 8 zero bytes (5.3.4.1)."""
    body = encrypted_random + b"\x00" * CLIENT_RANDOM_PADDING
    return struct.pack("<HHI", SecurityFlag.SEC_EXCHANGE_PKT | flags, 0, len(body)) + body


def parse_security_exchange(data: bytes) -> SecurityExchange:
    if len(data) < 8:
        raise ProtocolError(f"Security Exchange PDU of {len(data)} bytes", 0)
    flags, _hi, length = struct.unpack_from("<HHI", data, 0)
    if not flags & SecurityFlag.SEC_EXCHANGE_PKT:
        raise ProtocolError(f"flags 0x{flags:04x} lack SEC_EXCHANGE_PKT", 0)
    if length != len(data) - 8 or length <= CLIENT_RANDOM_PADDING:
        raise ProtocolError(f"Security Exchange length {length} for {len(data) - 8} bytes", 4)
    return SecurityExchange(flags, bytes(data[8 : len(data) - CLIENT_RANDOM_PADDING]))
