"""MS-RDPEUDP SYN / SYN+ACK datagrams (2.2.2.1, 2.2.2.5, 2.2.2.8, 2.2.2.14; 3.1.5.1.1-2).

Network byte order throughout. A SYN is RDPUDP_FEC_HEADER + RDPUDP_SYNDATA_PAYLOAD
[+ RDPUDP_CORRELATION_ID_PAYLOAD][+ RDPUDP_SYNDATAEX_PAYLOAD], zero-padded to the smaller MTU
(so a probe is as large as the answer it elicits: no amplification from rdprobe's side).
"""

from __future__ import annotations

import enum
import secrets
import struct
from dataclasses import dataclass

from rdprobe.protocol.errors import ProtocolError

FEC_HEADER_LEN = 8
SYNDATA_LEN = 8
CORRELATION_LEN = 32
SYNEX_LEN = 4
COOKIE_HASH_LEN = 32
MIN_MTU = 1132
MAX_MTU = 1232
SN_SOURCE_ACK_SYN = 0xFFFFFFFF  # -1 in a client SYN


class Flag(enum.IntFlag):
    RDPUDP_FLAG_SYN = 0x0001
    RDPUDP_FLAG_FIN = 0x0002
    RDPUDP_FLAG_ACK = 0x0004
    RDPUDP_FLAG_DATA = 0x0008
    RDPUDP_FLAG_FEC = 0x0010
    RDPUDP_FLAG_CN = 0x0020
    RDPUDP_FLAG_CWR = 0x0040
    RDPUDP_FLAG_SACK_OPTION = 0x0080
    RDPUDP_FLAG_ACK_OF_ACKS = 0x0100
    RDPUDP_FLAG_SYNLOSSY = 0x0200
    RDPUDP_FLAG_ACKDELAYED = 0x0400
    RDPUDP_FLAG_CORRELATION_ID = 0x0800
    RDPUDP_FLAG_SYNEX = 0x1000


class Version(enum.IntEnum):
    RDPUDP_PROTOCOL_VERSION_1 = 0x0001
    RDPUDP_PROTOCOL_VERSION_2 = 0x0002
    RDPUDP_PROTOCOL_VERSION_3 = 0x0101  # switch to MS-RDPEUDP2


RDPUDP_VERSION_INFO_VALID = 0x0001


def flag_names(flags: int) -> list[str]:
    return [f.name.removeprefix("RDPUDP_FLAG_") for f in Flag if f & flags and f.name]


@dataclass(frozen=True)
class RdpUdpSyn:
    """A SYN or SYN+ACK (``is_syn_ack``) as sent on the wire."""

    flags: int
    ack: int  # snSourceAck
    window: int  # uReceiveWindowSize
    isn: int  # snInitialSequenceNumber
    up_mtu: int
    down_mtu: int
    synex_flags: int | None = None
    version: int | None = None  # uUdpVer when SYNEX is present
    correlation_id: bytes | None = None
    cookie_hash: bytes | None = None
    length: int = 0  # datagram size

    @property
    def is_syn_ack(self) -> bool:
        return bool(self.flags & Flag.RDPUDP_FLAG_SYN and self.flags & Flag.RDPUDP_FLAG_ACK)

    @property
    def lossy(self) -> bool:
        return bool(self.flags & Flag.RDPUDP_FLAG_SYNLOSSY)

    @property
    def mtus_in_range(self) -> bool:
        return MIN_MTU <= self.up_mtu <= MAX_MTU and MIN_MTU <= self.down_mtu <= MAX_MTU

    def to_dict(self) -> dict[str, object]:
        return {
            "flags": self.flags,
            "flag_names": flag_names(self.flags),
            "ack": self.ack,
            "window": self.window,
            "isn": self.isn,
            "up_mtu": self.up_mtu,
            "down_mtu": self.down_mtu,
            "synex_flags": self.synex_flags,
            "version": self.version,
            "version_name": _version_name(self.version),
            "correlation_id": self.correlation_id.hex() if self.correlation_id else None,
            "cookie_hash": self.cookie_hash.hex() if self.cookie_hash else None,
            "length": self.length,
            "is_syn_ack": self.is_syn_ack,
        }


def _version_name(version: int | None) -> str | None:
    if version is None:
        return None
    try:
        return Version(version).name
    except ValueError:
        return f"UNKNOWN_0x{version:04x}"


def build_syn(
    *,
    isn: int | None = None,
    window: int = 64,
    up_mtu: int = MAX_MTU,
    down_mtu: int = MAX_MTU,
    version: int | None = Version.RDPUDP_PROTOCOL_VERSION_2,
    correlation_id: bytes | None = None,
    cookie_hash: bytes | None = None,
    lossy: bool = False,
    ack: int = SN_SOURCE_ACK_SYN,
    extra_flags: int = 0,
    pad: bool = True,
) -> bytes:
    """SYN datagram (3.1.5.1.1); with ``extra_flags=ACK`` and ``ack`` set it is a SYN+ACK."""
    if not (MIN_MTU <= up_mtu <= MAX_MTU and MIN_MTU <= down_mtu <= MAX_MTU):
        raise ProtocolError(f"MTUs {up_mtu}/{down_mtu} outside {MIN_MTU}..{MAX_MTU}")
    if correlation_id is not None and len(correlation_id) != 16:
        raise ProtocolError("correlation id must be 16 bytes")
    if cookie_hash is not None and (
        len(cookie_hash) != 32 or version != Version.RDPUDP_PROTOCOL_VERSION_3
    ):
        raise ProtocolError("cookieHash is 32 bytes and only sent with version 3")
    flags = Flag.RDPUDP_FLAG_SYN | extra_flags
    if lossy:
        flags |= Flag.RDPUDP_FLAG_SYNLOSSY
    if correlation_id is not None:
        flags |= Flag.RDPUDP_FLAG_CORRELATION_ID
    if version is not None:
        flags |= Flag.RDPUDP_FLAG_SYNEX
    isn = secrets.randbits(32) if isn is None else isn
    out = struct.pack(">IHH", ack, window, flags) + struct.pack(">IHH", isn, up_mtu, down_mtu)
    if correlation_id is not None:
        out += correlation_id + b"\x00" * 16
    if version is not None:
        out += struct.pack(">HH", RDPUDP_VERSION_INFO_VALID, version) + (cookie_hash or b"")
    if pad:
        out = out.ljust(min(up_mtu, down_mtu), b"\x00")
    return out


def build_syn_ack(
    syn: RdpUdpSyn,
    *,
    isn: int | None = None,
    window: int = 64,
    up_mtu: int = MAX_MTU,
    down_mtu: int = MAX_MTU,
    version: int | None = None,
    correlation_id: bytes | None = None,
    cookie_hash: bytes | None = None,
    lossy: bool = False,
    pad: bool = True,
) -> bytes:
    """The server's answer to ``syn`` (3.1.5.1.2): ack = client ISN, version = min of both.

    The keywords are :func:`build_syn`'s, except ``version``: None takes the lower of the
    client's and ours (a SYN without a version field gets none back).
    """
    if version is None and syn.version is not None:
        version = min(syn.version, Version.RDPUDP_PROTOCOL_VERSION_2)
    return build_syn(
        isn=isn,
        window=window,
        up_mtu=up_mtu,
        down_mtu=down_mtu,
        version=version,
        correlation_id=correlation_id,
        cookie_hash=cookie_hash,
        lossy=lossy,
        ack=syn.isn,
        extra_flags=Flag.RDPUDP_FLAG_ACK,
        pad=pad,
    )


def parse_syn(datagram: bytes) -> RdpUdpSyn:
    """Parse a SYN or SYN+ACK; ProtocolError for anything else or truncated payloads."""
    if len(datagram) < FEC_HEADER_LEN + SYNDATA_LEN:
        raise ProtocolError(f"{len(datagram)}-byte datagram is shorter than a SYN", 0)
    ack, window, flags = struct.unpack_from(">IHH", datagram, 0)
    if not flags & Flag.RDPUDP_FLAG_SYN:
        raise ProtocolError(f"not a SYN: uFlags 0x{flags:04x}", 6)
    isn, up_mtu, down_mtu = struct.unpack_from(">IHH", datagram, FEC_HEADER_LEN)
    pos = FEC_HEADER_LEN + SYNDATA_LEN
    correlation = None
    if flags & Flag.RDPUDP_FLAG_CORRELATION_ID:
        if pos + CORRELATION_LEN > len(datagram):
            raise ProtocolError("truncated RDPUDP_CORRELATION_ID_PAYLOAD", pos)
        correlation = bytes(datagram[pos : pos + 16])
        pos += CORRELATION_LEN
    synex_flags = version = cookie = None
    if flags & Flag.RDPUDP_FLAG_SYNEX:
        if pos + SYNEX_LEN > len(datagram):
            raise ProtocolError("truncated RDPUDP_SYNDATAEX_PAYLOAD", pos)
        synex_flags, version = struct.unpack_from(">HH", datagram, pos)
        pos += SYNEX_LEN
        if version == Version.RDPUDP_PROTOCOL_VERSION_3 and pos + COOKIE_HASH_LEN <= len(datagram):
            cookie = bytes(datagram[pos : pos + COOKIE_HASH_LEN])
    return RdpUdpSyn(
        flags, ack, window, isn, up_mtu, down_mtu, synex_flags, version, correlation, cookie,
        len(datagram),
    )  # fmt: skip
