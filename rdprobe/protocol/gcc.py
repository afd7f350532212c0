"""T.124 GCC Conference Create Request/Response: what the RDP client and server blocks share.

MS-RDPBCGR 2.2.1.3.1 / 2.2.1.4.1: the PER-encoded ConferenceCreateRequest/Response wrappers,
TS_UD_HEADER block framing (type u16 LE, length u16 LE incl. header, little-endian throughout),
the block types and encryption enums (2.2.1.3.3, 2.2.1.4.3) and version_name (2.2.1.4.2).
The blocks themselves live in ``gcc_client`` (CS_CORE, CS_SECURITY, CS_NET, CS_CLUSTER,
2.2.1.3.2-2.2.1.3.5) and ``gcc_server`` (SC_CORE, SC_SECURITY, SC_NET, 2.2.1.4.2-2.2.1.4.4).
"""

from __future__ import annotations

import enum
import struct

from rdprobe.protocol import per
from rdprobe.protocol.errors import ProtocolError

T124_OID = (0, 0, 20, 124, 0, 1)


CLIENT_KEY = b"Duca"  # h221NonStandard key of the request


SERVER_KEY = b"McDn"  # ... and of the response


_CCR_HEAD = bytes.fromhex("0008001000") + b"\x01\xc0\x00" + CLIENT_KEY  # mstsc's, 4.1.3


_CCRSP_HEAD = bytes.fromhex("14760a01010001c000") + SERVER_KEY  # Windows', 4.1.4


class BlockType(enum.IntEnum):
    CS_CORE = 0xC001
    CS_SECURITY = 0xC002
    CS_NET = 0xC003
    CS_CLUSTER = 0xC004
    CS_MONITOR = 0xC005
    CS_MCS_MSGCHANNEL = 0xC006
    CS_MONITOR_EX = 0xC008
    CS_MULTITRANSPORT = 0xC00A
    CS_UNUSED1 = 0xC00C
    SC_CORE = 0x0C01
    SC_SECURITY = 0x0C02
    SC_NET = 0x0C03
    SC_MCS_MSGCHANNEL = 0x0C04
    SC_MULTITRANSPORT = 0x0C08


class EncryptionMethod(enum.IntFlag):
    """encryptionMethods (client bitmask) / encryptionMethod (server, one value), 2.2.1.3.3."""

    ENCRYPTION_METHOD_NONE = 0x00
    ENCRYPTION_METHOD_40BIT = 0x01
    ENCRYPTION_METHOD_128BIT = 0x02
    ENCRYPTION_METHOD_56BIT = 0x08
    ENCRYPTION_METHOD_FIPS = 0x10


class EncryptionLevel(enum.IntEnum):
    """encryptionLevel of TS_UD_SC_SEC1, 2.2.1.4.3."""

    ENCRYPTION_LEVEL_NONE = 0
    ENCRYPTION_LEVEL_LOW = 1
    ENCRYPTION_LEVEL_CLIENT_COMPATIBLE = 2
    ENCRYPTION_LEVEL_HIGH = 3
    ENCRYPTION_LEVEL_FIPS = 4


class ClientEarlyCapability(enum.IntFlag):
    """earlyCapabilityFlags of TS_UD_CS_CORE (2.2.1.3.2)."""

    RNS_UD_CS_SUPPORT_ERRINFO_PDU = 0x0001
    RNS_UD_CS_WANT_32BPP_SESSION = 0x0002
    RNS_UD_CS_SUPPORT_STATUSINFO_PDU = 0x0004
    RNS_UD_CS_STRONG_ASYMMETRIC_KEYS = 0x0008
    RNS_UD_CS_RELATIVE_MOUSE_INPUT = 0x0010
    RNS_UD_CS_VALID_CONNECTION_TYPE = 0x0020
    RNS_UD_CS_SUPPORT_MONITOR_LAYOUT_PDU = 0x0040
    RNS_UD_CS_SUPPORT_NETCHAR_AUTODETECT = 0x0080
    RNS_UD_CS_SUPPORT_DYNVC_GFX_PROTOCOL = 0x0100
    RNS_UD_CS_SUPPORT_DYNAMIC_TIME_ZONE = 0x0200
    RNS_UD_CS_SUPPORT_HEARTBEAT_PDU = 0x0400
    RNS_UD_CS_SUPPORT_SKIP_CHANNELJOIN = 0x0800


def early_capability_names(flags: int) -> list[str]:
    """Names of the set earlyCapabilityFlags bits; unknown bits as hex (0x1000 ...)."""
    names = [f.name or "" for f in ClientEarlyCapability if flags & f]
    rest = flags & ~sum(ClientEarlyCapability)
    return names + [f"0x{1 << b:04x}" for b in range(16) if rest & (1 << b)]


SHORT_METHOD = {0x00: "NONE", 0x01: "40BIT", 0x02: "128BIT", 0x08: "56BIT", 0x10: "FIPS"}


SHORT_LEVEL = {0: "NONE", 1: "LOW", 2: "CLIENT_COMPATIBLE", 3: "HIGH", 4: "FIPS"}


# Zeek's high_color_depths table (requested_color_depth in rdp.log).
HIGH_COLOR_DEPTHS = {4: "4bit", 8: "8bit", 15: "15bit", 16: "16bit", 24: "24bit"}


def version_name(version: int) -> str:
    """TS_UD_SC_CORE version -> 'RDP 5.0-8.1 (0x00080004)' per 2.2.1.4.2."""
    minor = version & 0xFFFF
    if version >> 16 != 0x0008 or minor in (0, 2, 3) or minor > 0x11:
        name = "unknown RDP version"
    elif minor == 1:
        name = "RDP 4.0"
    elif minor == 4:
        name = "RDP 5.0-8.1"
    else:
        name = f"RDP 10.{minor - 5}"
    return f"{name} (0x{version:08X})"


def method_names(mask: int) -> list[str]:
    return [SHORT_METHOD[bit] for bit in (0x01, 0x08, 0x02, 0x10) if mask & bit]


def _u16(b: bytes, o: int) -> int:
    return struct.unpack_from("<H", b, o)[0]


def _u32(b: bytes, o: int) -> int:
    return struct.unpack_from("<I", b, o)[0]


def _utf16z(raw: bytes) -> str:
    text = raw.decode("utf-16-le", errors="replace")
    return text.split("\x00", 1)[0]


def _block(block_type: int, body: bytes) -> bytes:
    return struct.pack("<HH", block_type, len(body) + 4) + body


def split_blocks(data: bytes) -> list[tuple[int, bytes]]:
    """TS_UD_HEADER-framed blocks -> [(type, body)]."""
    blocks, pos = [], 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ProtocolError("truncated user data block header", pos)
        block_type, length = struct.unpack_from("<HH", data, pos)
        if length < 4 or pos + length > len(data):
            raise ProtocolError(f"user data block 0x{block_type:04x} length {length}", pos + 2)
        blocks.append((block_type, bytes(data[pos + 4 : pos + length])))
        pos += length
    return blocks


def build_conference_create_request(user_data: bytes) -> bytes:
    """Wrap client blocks in GCC ConnectData + ConferenceCreateRequest (PER, 2.2.1.3.1)."""
    tail = _CCR_HEAD + struct.pack(">H", 0x8000 | len(user_data)) + user_data
    key = b"\x00" + per.encode_object_identifier(T124_OID)
    return key + struct.pack(">H", 0x8000 | len(tail)) + tail


def _read_key_header(data: bytes) -> int:
    """Skip the T.124 key and connectPDU length; offset of the ConnectGCCPDU."""
    choice, pos = per.read_u8(data, 0, "ConnectData key choice")
    if choice != 0:
        raise ProtocolError(f"GCC key choice {choice}, expected object (0)", 0)
    oid, pos = per.read_object_identifier(data, pos)
    if oid != T124_OID:
        raise ProtocolError(f"GCC key {oid} is not T.124 {T124_OID}", 1)
    _connect_pdu_len, pos = per.read_length(data, pos)  # Windows puts a wrong value here
    return pos


def _user_data_after(data: bytes, pos: int, key: bytes) -> bytes:
    """Read the h221NonStandard key at ``pos`` and the user data after it."""
    got, pos = per.read_octets(data, pos, len(key), "h221NonStandard key")
    if got != key:
        raise ProtocolError(f"h221NonStandard key {got!r}, expected {key!r}", pos - len(key))
    length, pos = per.read_length(data, pos)
    user_data, _ = per.read_octets(data, pos, length, "GCC user data")
    return user_data


def build_conference_create_response(user_data: bytes) -> bytes:
    """Server blocks wrapped like Windows does (connectPDU length 0x2a, as 4.1.4 shows)."""
    key = b"\x00" + per.encode_object_identifier(T124_OID)
    return key + b"\x2a" + _CCRSP_HEAD + struct.pack(">H", 0x8000 | len(user_data)) + user_data
