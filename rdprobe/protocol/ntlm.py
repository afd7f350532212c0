"""NTLMSSP NEGOTIATE and CHALLENGE messages (MS-NLMP 2.2.1.1, 2.2.1.2, 2.2.2).

rdprobe only ever sends a NEGOTIATE without domain, workstation or credentials, and reads the
server's CHALLENGE: its target name, version and target info (AV pairs) describe the server.
Every offset and length is checked; only ProtocolError escapes the parsers.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rdprobe.protocol.errors import ProtocolError

SIGNATURE = b"NTLMSSP\x00"
MESSAGE_NEGOTIATE = 1
MESSAGE_CHALLENGE = 2
NTLMSSP_REVISION_W2K3 = 0x0F
CHALLENGE_HEADER = 48  # up to TargetInfoFields; Version (8 bytes) follows when present
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


class NegotiateFlags(enum.IntFlag):
    """MS-NLMP 2.2.2.5."""

    NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
    NTLM_NEGOTIATE_OEM = 0x00000002
    NTLMSSP_REQUEST_TARGET = 0x00000004
    NTLMSSP_NEGOTIATE_SIGN = 0x00000010
    NTLMSSP_NEGOTIATE_SEAL = 0x00000020
    NTLMSSP_NEGOTIATE_DATAGRAM = 0x00000040
    NTLMSSP_NEGOTIATE_LM_KEY = 0x00000080
    NTLMSSP_NEGOTIATE_NTLM = 0x00000200
    NTLMSSP_ANONYMOUS = 0x00000800
    NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x00001000
    NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x00002000
    NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
    NTLMSSP_TARGET_TYPE_DOMAIN = 0x00010000
    NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
    NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
    NTLMSSP_NEGOTIATE_IDENTIFY = 0x00100000
    NTLMSSP_REQUEST_NON_NT_SESSION_KEY = 0x00400000
    NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
    NTLMSSP_NEGOTIATE_VERSION = 0x02000000
    NTLMSSP_NEGOTIATE_128 = 0x20000000
    NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
    NTLMSSP_NEGOTIATE_56 = 0x80000000


class AvId(enum.IntEnum):
    """AV_PAIR AvId values (MS-NLMP 2.2.2.1)."""

    MsvAvEOL = 0
    MsvAvNbComputerName = 1
    MsvAvNbDomainName = 2
    MsvAvDnsComputerName = 3
    MsvAvDnsDomainName = 4
    MsvAvDnsTreeName = 5
    MsvAvFlags = 6
    MsvAvTimestamp = 7
    MsvAvSingleHost = 8
    MsvAvTargetName = 9
    MsvAvChannelBindings = 10


F = NegotiateFlags
DEFAULT_NEGOTIATE_FLAGS = (
    F.NTLMSSP_NEGOTIATE_UNICODE
    | F.NTLM_NEGOTIATE_OEM
    | F.NTLMSSP_REQUEST_TARGET
    | F.NTLMSSP_NEGOTIATE_NTLM
    | F.NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | F.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | F.NTLMSSP_NEGOTIATE_VERSION
    | F.NTLMSSP_NEGOTIATE_128
    | F.NTLMSSP_NEGOTIATE_56
    | F.NTLMSSP_NEGOTIATE_KEY_EXCH
)

NtlmVersion = tuple[int, int, int, int]
"""(ProductMajorVersion, ProductMinorVersion, ProductBuild, NTLMRevisionCurrent), 2.2.2.10."""

CLIENT_VERSION: NtlmVersion = (10, 0, 0, NTLMSSP_REVISION_W2K3)
"""What rdprobe puts in its own VERSION field: "for debugging purposes only" (2.2.2.10)."""


@dataclass(frozen=True)
class NtlmNegotiate:
    """NEGOTIATE_MESSAGE (2.2.1.1); rdprobe never fills domain or workstation."""

    flags: NegotiateFlags
    domain: bytes = b""
    workstation: bytes = b""
    version: NtlmVersion | None = None


def build_negotiate(
    flags: NegotiateFlags = DEFAULT_NEGOTIATE_FLAGS, version: NtlmVersion = CLIENT_VERSION
) -> bytes:
    """An anonymous NEGOTIATE_MESSAGE: no user, no domain, no workstation, no credential."""
    header = SIGNATURE + struct.pack("<II", MESSAGE_NEGOTIATE, int(flags))
    empty_fields = struct.pack("<HHI", 0, 0, 40) * 2  # DomainNameFields, WorkstationFields
    return header + empty_fields + _pack_version(version)


def parse_negotiate(data: bytes) -> NtlmNegotiate:
    """Parse a NEGOTIATE_MESSAGE (used by tests and the emulator)."""
    _check_header(data, MESSAGE_NEGOTIATE, 32)
    flags = NegotiateFlags(struct.unpack_from("<I", data, 12)[0])
    domain = _payload(data, 16, "DomainName")
    workstation = _payload(data, 24, "Workstation")
    version = None
    if flags & F.NTLMSSP_NEGOTIATE_VERSION and len(data) >= 40:
        version = _unpack_version(data, 32)
    return NtlmNegotiate(flags, domain, workstation, version)


@dataclass(frozen=True)
class NtlmChallenge:
    """What a CHALLENGE_MESSAGE (2.2.1.2) says about the server."""

    target_name: str
    flags: NegotiateFlags
    server_challenge: bytes
    version: NtlmVersion | None
    nb_computer: str | None = None
    nb_domain: str | None = None
    dns_computer: str | None = None
    dns_domain: str | None = None
    dns_tree: str | None = None
    timestamp: datetime | None = None
    """MsvAvTimestamp as an aware UTC datetime (None if absent or out of range)."""
    other_av_pairs: tuple[tuple[int, bytes], ...] = ()
    """AV pairs other than names and timestamp (Flags, SingleHost, …) and any unknown ids."""

    @property
    def version_text(self) -> str | None:
        return None if self.version is None else "{}.{}.{}".format(*self.version[:3])

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_name": self.target_name,
            "flags": f"0x{int(self.flags):08x}",
            "server_challenge": self.server_challenge.hex(),
            "version": self.version_text,
            "ntlm_revision": None if self.version is None else self.version[3],
            "nb_computer": self.nb_computer,
            "nb_domain": self.nb_domain,
            "dns_computer": self.dns_computer,
            "dns_domain": self.dns_domain,
            "dns_tree": self.dns_tree,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
            "other_av_pairs": [{"id": i, "value": v.hex()} for i, v in self.other_av_pairs],
        }


_NAME_FIELDS = {
    AvId.MsvAvNbComputerName: "nb_computer",
    AvId.MsvAvNbDomainName: "nb_domain",
    AvId.MsvAvDnsComputerName: "dns_computer",
    AvId.MsvAvDnsDomainName: "dns_domain",
    AvId.MsvAvDnsTreeName: "dns_tree",
}


def parse_challenge(data: bytes) -> NtlmChallenge:
    """Parse a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2)."""
    _check_header(data, MESSAGE_CHALLENGE, CHALLENGE_HEADER)
    flags = NegotiateFlags(struct.unpack_from("<I", data, 20)[0])
    target_raw = _payload(data, 12, "TargetName")
    unicode = bool(flags & F.NTLMSSP_NEGOTIATE_UNICODE)
    target_name = target_raw.decode("utf-16-le" if unicode else "latin-1", errors="replace")
    server_challenge = data[24:32]
    target_info = _payload(data, 40, "TargetInfo")
    version = None
    if flags & F.NTLMSSP_NEGOTIATE_VERSION and len(data) >= CHALLENGE_HEADER + 8:
        if _lowest_payload_offset(data) >= CHALLENGE_HEADER + 8:
            version = _unpack_version(data, CHALLENGE_HEADER)
    names: dict[str, str] = {}
    timestamp = None
    others: list[tuple[int, bytes]] = []
    for av_id, value in parse_av_pairs(target_info):
        if av_id in _NAME_FIELDS:
            names.setdefault(_NAME_FIELDS[AvId(av_id)], value.decode("utf-16-le", "replace"))
        elif av_id == AvId.MsvAvTimestamp and len(value) == 8 and timestamp is None:
            timestamp = filetime_to_datetime(int.from_bytes(value, "little"))
            if timestamp is None:
                others.append((av_id, value))
        else:
            others.append((av_id, value))
    return NtlmChallenge(
        target_name=target_name,
        flags=flags,
        server_challenge=server_challenge,
        version=version,
        timestamp=timestamp,
        other_av_pairs=tuple(others),
        **names,
    )


def build_challenge(challenge: NtlmChallenge) -> bytes:
    """Encode a CHALLENGE_MESSAGE (for tests and the emulator); AV pairs in Windows' order."""
    pairs: list[tuple[int, bytes]] = []
    for av_id in (2, 1, 4, 3, 5):
        value = getattr(challenge, _NAME_FIELDS[AvId(av_id)])
        if value is not None:
            pairs.append((av_id, value.encode("utf-16-le")))
    if challenge.timestamp is not None:
        pairs.append((AvId.MsvAvTimestamp, datetime_to_filetime(challenge.timestamp)))
    pairs.extend(challenge.other_av_pairs)
    target_info = build_av_pairs(pairs)
    unicode = bool(challenge.flags & F.NTLMSSP_NEGOTIATE_UNICODE)
    target = challenge.target_name.encode("utf-16-le" if unicode else "latin-1")
    version = b"" if challenge.version is None else _pack_version(challenge.version)
    base = CHALLENGE_HEADER + len(version)
    fields = struct.pack("<HHI", len(target), len(target), base)
    info_fields = struct.pack("<HHI", len(target_info), len(target_info), base + len(target))
    if len(challenge.server_challenge) != 8:
        raise ValueError("server_challenge must be 8 bytes")
    return (
        SIGNATURE
        + struct.pack("<I", MESSAGE_CHALLENGE)
        + fields
        + struct.pack("<I", int(challenge.flags))
        + challenge.server_challenge
        + bytes(8)
        + info_fields
        + version
        + target
        + target_info
    )


def parse_av_pairs(data: bytes) -> list[tuple[int, bytes]]:
    """AV_PAIR list (2.2.2.1) up to MsvAvEOL; a missing EOL is tolerated."""
    pairs: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise ProtocolError("truncated AV_PAIR header", offset)
        av_id, av_len = struct.unpack_from("<HH", data, offset)
        offset += 4
        if offset + av_len > len(data):
            raise ProtocolError(f"AV_PAIR {av_id} of {av_len} bytes overruns TargetInfo", offset)
        if av_id == AvId.MsvAvEOL:
            break
        pairs.append((av_id, data[offset : offset + av_len]))
        offset += av_len
    return pairs


def build_av_pairs(pairs: list[tuple[int, bytes]]) -> bytes:
    out = b"".join(struct.pack("<HH", int(i), len(v)) + v for i, v in pairs)
    return out + struct.pack("<HH", AvId.MsvAvEOL, 0)


def filetime_to_datetime(filetime: int) -> datetime | None:
    """FILETIME (100 ns since 1601-01-01 UTC) to an aware datetime; None when out of range."""
    try:
        return FILETIME_EPOCH + timedelta(microseconds=filetime // 10)
    except OverflowError:
        return None


def datetime_to_filetime(moment: datetime) -> bytes:
    delta = moment.astimezone(UTC) - FILETIME_EPOCH
    ticks = (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10
    return ticks.to_bytes(8, "little")


def _check_header(data: bytes, message_type: int, minimum: int) -> None:
    if len(data) < minimum:
        raise ProtocolError(f"NTLM message of {len(data)} bytes, need at least {minimum}")
    if data[:8] != SIGNATURE:
        raise ProtocolError("no NTLMSSP signature")
    got = struct.unpack_from("<I", data, 8)[0]
    if got != message_type:
        raise ProtocolError(f"NTLM MessageType {got}, expected {message_type}", 8)


def _payload(data: bytes, fields_offset: int, what: str) -> bytes:
    """Bytes a (Len, MaxLen, BufferOffset) field triple points at, bounds-checked."""
    length, _max_length, offset = struct.unpack_from("<HHI", data, fields_offset)
    if length == 0:
        return b""
    if offset + length > len(data):
        raise ProtocolError(f"{what} ({length} bytes at {offset}) overruns the message", offset)
    return data[offset : offset + length]


def _lowest_payload_offset(data: bytes) -> int:
    """Smallest BufferOffset of a non-empty payload (TargetName, TargetInfo) in a CHALLENGE."""
    offsets = []
    for fields_offset in (12, 40):
        length, _max, offset = struct.unpack_from("<HHI", data, fields_offset)
        if length:
            offsets.append(offset)
    return min(offsets, default=len(data))


def _pack_version(version: NtlmVersion) -> bytes:
    major, minor, build, revision = version
    return struct.pack("<BBH3xB", major, minor, build, revision)


def _unpack_version(data: bytes, offset: int) -> NtlmVersion:
    major, minor, build, revision = struct.unpack_from("<BBH3xB", data, offset)
    return (major, minor, build, revision)
