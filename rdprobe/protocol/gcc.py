"""T.124 GCC Conference Create Request/Response and the RDP user data blocks they carry.

MS-RDPBCGR 2.2.1.3.1-2.2.1.3.4 (client CS_CORE, CS_SECURITY, CS_NET, CS_CLUSTER) and
2.2.1.4.1-2.2.1.4.4 (server SC_CORE, SC_SECURITY, SC_NET). Blocks are TS_UD_HEADER (type u16 LE,
length u16 LE incl. header) + body, little-endian throughout. A malformed server certificate does
not fail the parse: it is kept as bytes plus ``certificate_error`` (it is a finding, not a crash).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from rdprobe.protocol import per, rdpsec
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
    """earlyCapabilityFlags of TS_UD_CS_CORE (subset)."""

    RNS_UD_CS_SUPPORT_ERRINFO_PDU = 0x0001
    RNS_UD_CS_WANT_32BPP_SESSION = 0x0002
    RNS_UD_CS_SUPPORT_STATUSINFO_PDU = 0x0004
    RNS_UD_CS_STRONG_ASYMMETRIC_KEYS = 0x0008
    RNS_UD_CS_VALID_CONNECTION_TYPE = 0x0020
    RNS_UD_CS_SUPPORT_MONITOR_LAYOUT_PDU = 0x0040


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


# --- client data (Conference Create Request) ------------------------------------------------


@dataclass(frozen=True)
class ClientCore:
    """TS_UD_CS_CORE; optional trailing fields are None when the client omitted them."""

    version: int = 0x00080004
    desktop_width: int = 1024
    desktop_height: int = 768
    color_depth: int = 0xCA01
    sas_sequence: int = 0xAA03
    keyboard_layout: int = 0x409
    client_build: int = 2600
    client_name: str = "rdprobe"
    keyboard_type: int = 4
    keyboard_sub_type: int = 0
    keyboard_function_key: int = 12
    post_beta2_color_depth: int | None = 0xCA01
    client_product_id: int | None = 1
    high_color_depth: int | None = 24
    supported_color_depths: int | None = 0x07
    early_capability_flags: int | None = 0x0001
    client_dig_product_id: str | None = ""
    connection_type: int | None = 0
    server_selected_protocol: int | None = 0

    @property
    def requested_color_depth(self) -> str | None:
        """Zeek's rdp.log requested_color_depth: 32bit if WANT_32BPP, else highColorDepth."""
        if self.early_capability_flags is not None and self.early_capability_flags & 0x0002:
            return "32bit"
        if self.high_color_depth is None:
            return None
        return HIGH_COLOR_DEPTHS.get(self.high_color_depth, f"{self.high_color_depth}bit")

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.__dict__)
        out["version_hex"] = f"0x{self.version:08X}"
        out["requested_color_depth"] = self.requested_color_depth
        return out


def build_client_core(core: ClientCore) -> bytes:
    name = core.client_name.encode("utf-16-le")[:30].ljust(32, b"\x00")
    body = struct.pack(
        "<IHHHHII32sIII64s",
        core.version,
        core.desktop_width,
        core.desktop_height,
        core.color_depth,
        core.sas_sequence,
        core.keyboard_layout,
        core.client_build,
        name,
        core.keyboard_type,
        core.keyboard_sub_type,
        core.keyboard_function_key,
        b"",
    )
    dig = (core.client_dig_product_id or "").encode("utf-16-le")[:62].ljust(64, b"\x00")
    body += struct.pack(
        "<HHIHHH64sBBI",
        core.post_beta2_color_depth or 0,
        core.client_product_id or 0,
        0,
        core.high_color_depth or 0,
        core.supported_color_depths or 0,
        core.early_capability_flags or 0,
        dig,
        core.connection_type or 0,
        0,
        core.server_selected_protocol or 0,
    )
    return _block(BlockType.CS_CORE, body)


def parse_client_core(body: bytes) -> ClientCore:
    if len(body) < 128:
        raise ProtocolError(f"CS_CORE of {len(body)} bytes, at least 128 expected", 0)
    fixed = struct.unpack_from("<IHHHHII32sIII", body, 0)
    opt: dict[str, object] = {}
    layout = [  # (offset, size, field)
        (128, 2, "post_beta2_color_depth"),
        (130, 2, "client_product_id"),
        (136, 2, "high_color_depth"),
        (138, 2, "supported_color_depths"),
        (140, 2, "early_capability_flags"),
        (142, 64, "client_dig_product_id"),
        (206, 1, "connection_type"),
        (208, 4, "server_selected_protocol"),
    ]
    for offset, size, name in layout:
        if len(body) < offset + size:
            opt[name] = None
        elif size == 64:
            opt[name] = _utf16z(body[offset : offset + size])
        else:
            opt[name] = int.from_bytes(body[offset : offset + size], "little")
    return ClientCore(
        *fixed[:7],
        _utf16z(fixed[7]),
        *fixed[8:11],
        **opt,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class ClientData:
    """Client blocks of a Connect Initial, for pcap analysis and the emulator."""

    core: ClientCore | None
    encryption_methods: int | None
    ext_encryption_methods: int | None
    channels: tuple[tuple[str, int], ...] | None
    cluster_flags: int | None
    block_order: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "core": self.core.to_dict() if self.core else None,
            "encryption_methods": self.encryption_methods,
            "encryption_method_names": method_names(self.encryption_methods or 0),
            "ext_encryption_methods": self.ext_encryption_methods,
            "channels": [name for name, _ in self.channels] if self.channels is not None else None,
            "channel_options": [opt for _, opt in self.channels] if self.channels else [],
            "cluster_flags": self.cluster_flags,
            "block_order": [f"0x{t:04x}" for t in self.block_order],
        }


def build_client_security(encryption_methods: int, ext_encryption_methods: int = 0) -> bytes:
    return _block(
        BlockType.CS_SECURITY, struct.pack("<II", encryption_methods, ext_encryption_methods)
    )


def build_client_network(channels: tuple[tuple[str, int], ...] = ()) -> bytes:
    body = struct.pack("<I", len(channels))
    for name, options in channels:
        body += name.encode("ascii")[:7].ljust(8, b"\x00") + struct.pack("<I", options)
    return _block(BlockType.CS_NET, body)


def build_conference_create_request(user_data: bytes) -> bytes:
    """Wrap client blocks in GCC ConnectData + ConferenceCreateRequest (PER, 2.2.1.3.1)."""
    tail = _CCR_HEAD + struct.pack(">H", 0x8000 | len(user_data)) + user_data
    key = b"\x00" + per.encode_object_identifier(T124_OID)
    return key + struct.pack(">H", 0x8000 | len(tail)) + tail


def build_client_data(
    *,
    selected_protocol: int = 0,
    encryption_methods: int = 0x1B,
    channels: tuple[tuple[str, int], ...] = (),
    core: ClientCore | None = None,
) -> bytes:
    """GCC Conference Create Request with CS_CORE, CS_SECURITY and CS_NET (what rdprobe sends)."""
    core = core or ClientCore(server_selected_protocol=selected_protocol)
    blocks = (
        build_client_core(core)
        + build_client_security(encryption_methods)
        + build_client_network(channels)
    )
    return build_conference_create_request(blocks)


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


def parse_conference_create_request(data: bytes) -> ClientData:
    """GCC Conference Create Request (MCS Connect-Initial userData) -> client blocks."""
    pos = _read_key_header(data)
    choice, pos = per.read_u8(data, pos, "ConnectGCCPDU choice")
    selection, pos = per.read_u8(data, pos, "ConferenceCreateRequest selection")
    if choice != 0 or selection & 0xF7:
        raise ProtocolError(
            f"unsupported ConferenceCreateRequest 0x{choice:02x}{selection:02x}", pos
        )
    name_len, pos = per.read_u8(data, pos, "conferenceName length")
    _, pos = per.read_octets(data, pos, (name_len + 2) // 2, "conferenceName")
    _, pos = per.read_octets(data, pos, 3, "terminationMethod / userData set")  # 00 01 c0
    key_len, pos = per.read_u8(data, pos, "h221NonStandard length")
    if key_len + 4 != len(CLIENT_KEY):
        raise ProtocolError(f"h221NonStandard key length {key_len + 4}", pos - 1)
    blocks = split_blocks(_user_data_after(data, pos, CLIENT_KEY))
    found = dict(reversed(blocks))  # first block of each type wins
    core = parse_client_core(found[BlockType.CS_CORE]) if BlockType.CS_CORE in found else None
    sec = found.get(BlockType.CS_SECURITY)
    if sec is not None and len(sec) < 8:
        raise ProtocolError("CS_SECURITY shorter than 8 bytes", 0)
    net = found.get(BlockType.CS_NET)
    channels = None
    if net is not None:
        if len(net) < 4 or len(net) < 4 + 12 * _u32(net, 0):
            raise ProtocolError("CS_NET channel array truncated", 0)
        channels = tuple(
            (
                net[4 + 12 * i : 12 + 12 * i].split(b"\x00", 1)[0].decode("latin-1"),
                _u32(net, 12 + 12 * i),
            )
            for i in range(_u32(net, 0))
        )
    cluster = found.get(BlockType.CS_CLUSTER)
    return ClientData(
        core=core,
        encryption_methods=_u32(sec, 0) if sec else None,
        ext_encryption_methods=_u32(sec, 4) if sec else None,
        channels=channels,
        cluster_flags=_u32(cluster, 0) if cluster and len(cluster) >= 4 else None,
        block_order=tuple(t for t, _ in blocks),
    )


# --- server data (Conference Create Response) -----------------------------------------------


@dataclass(frozen=True)
class ServerCore:
    version: int
    client_requested_protocols: int | None = None
    early_capability_flags: int | None = None
    length: int = 0  # body length + 4, telling 2000/XP (8) from 2003-2008 R2 (12) and 2012+ (16)

    @property
    def version_name(self) -> str:
        return version_name(self.version)

    def to_dict(self) -> dict[str, object]:
        return {
            "version": f"0x{self.version:08X}",
            "version_name": self.version_name,
            "client_requested_protocols": self.client_requested_protocols,
            "early_capability_flags": self.early_capability_flags,
            "length": self.length,
        }


@dataclass(frozen=True)
class ServerNetwork:
    io_channel: int
    channel_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"io_channel": self.io_channel, "channel_ids": list(self.channel_ids)}


@dataclass(frozen=True)
class ServerSecurity:
    encryption_method: int
    encryption_level: int
    server_random: bytes = b""
    certificate_bytes: bytes = b""
    certificate: rdpsec.ServerCertificate | None = None
    certificate_error: str | None = None

    @property
    def method_name(self) -> str:
        return SHORT_METHOD.get(self.encryption_method, f"UNKNOWN_0x{self.encryption_method:x}")

    @property
    def level_name(self) -> str:
        return SHORT_LEVEL.get(self.encryption_level, f"UNKNOWN_{self.encryption_level}")

    def to_dict(self) -> dict[str, object]:
        return {
            "encryption_method": self.encryption_method,
            "encryption_method_name": self.method_name,
            "encryption_level": self.encryption_level,
            "encryption_level_name": self.level_name,
            "server_random_len": len(self.server_random),
            "certificate_len": len(self.certificate_bytes),
            "certificate": self.certificate.to_dict() if self.certificate else None,
            "certificate_error": self.certificate_error,
        }


@dataclass(frozen=True)
class ServerData:
    core: ServerCore | None
    network: ServerNetwork | None
    security: ServerSecurity | None
    message_channel_id: int | None = None
    multitransport_flags: int | None = None
    block_order: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "core": self.core.to_dict() if self.core else None,
            "network": self.network.to_dict() if self.network else None,
            "security": self.security.to_dict() if self.security else None,
            "message_channel_id": self.message_channel_id,
            "multitransport_flags": self.multitransport_flags,
            "block_order": [f"0x{t:04x}" for t in self.block_order],
        }


def parse_server_core(body: bytes) -> ServerCore:
    if len(body) < 4:
        raise ProtocolError("SC_CORE shorter than 4 bytes", 0)
    crp = _u32(body, 4) if len(body) >= 8 else None
    ecf = _u32(body, 8) if len(body) >= 12 else None
    return ServerCore(_u32(body, 0), crp, ecf, len(body) + 4)


def parse_server_network(body: bytes) -> ServerNetwork:
    if len(body) < 4:
        raise ProtocolError("SC_NET shorter than 4 bytes", 0)
    count = _u16(body, 2)
    if len(body) < 4 + 2 * count:
        raise ProtocolError(f"SC_NET announces {count} channels, has room for fewer", 2)
    ids = struct.unpack_from(f"<{count}H", body, 4)
    return ServerNetwork(_u16(body, 0), tuple(ids))


def parse_server_security(body: bytes) -> ServerSecurity:
    if len(body) < 8:
        raise ProtocolError("SC_SECURITY shorter than 8 bytes", 0)
    method, level = _u32(body, 0), _u32(body, 4)
    if len(body) == 8:
        return ServerSecurity(method, level)
    if len(body) < 16:
        raise ProtocolError("SC_SECURITY random/certificate lengths truncated", 8)
    random_len, cert_len = _u32(body, 8), _u32(body, 12)
    if 16 + random_len + cert_len > len(body):
        raise ProtocolError(f"SC_SECURITY lengths {random_len}+{cert_len} exceed block", 8)
    random = body[16 : 16 + random_len]
    cert_bytes = body[16 + random_len : 16 + random_len + cert_len]
    cert, error = None, None
    try:
        cert = rdpsec.parse_server_certificate(cert_bytes)
    except ProtocolError as exc:
        error = str(exc)
    return ServerSecurity(method, level, random, cert_bytes, cert, error)


def parse_conference_create_response(data: bytes) -> ServerData:
    """GCC Conference Create Response (MCS Connect-Response userData) -> server blocks."""
    pos = _read_key_header(data)
    head, pos = per.read_octets(data, pos, 1, "ConnectGCCPDU choice")
    _node_id, pos = per.read_u16(data, pos, 1001, "nodeID")
    tag_len, pos = per.read_u8(data, pos, "tag length")
    _, pos = per.read_octets(data, pos, tag_len, "tag")
    result, pos = per.read_u8(data, pos, "result")
    sets, pos = per.read_u8(data, pos, "userData sets")
    choice, pos = per.read_u8(data, pos, "userData choice")
    key_len, pos = per.read_u8(data, pos, "h221NonStandard length")
    if head != b"\x14" or result != 0 or sets != 1 or choice != 0xC0 or key_len != 0:
        raise ProtocolError(f"unexpected ConferenceCreateResponse (result {result})", pos)
    blocks = split_blocks(_user_data_after(data, pos, SERVER_KEY))
    found = dict(reversed(blocks))
    core = found.get(BlockType.SC_CORE)
    net = found.get(BlockType.SC_NET)
    sec = found.get(BlockType.SC_SECURITY)
    msg = found.get(BlockType.SC_MCS_MSGCHANNEL)
    mt = found.get(BlockType.SC_MULTITRANSPORT)
    return ServerData(
        core=parse_server_core(core) if core is not None else None,
        network=parse_server_network(net) if net is not None else None,
        security=parse_server_security(sec) if sec is not None else None,
        message_channel_id=_u16(msg, 0) if msg and len(msg) >= 2 else None,
        multitransport_flags=_u32(mt, 0) if mt and len(mt) >= 4 else None,
        block_order=tuple(t for t, _ in blocks),
    )


def build_server_core(core: ServerCore) -> bytes:
    body = struct.pack("<I", core.version)
    if core.client_requested_protocols is not None:
        body += struct.pack("<I", core.client_requested_protocols)
        if core.early_capability_flags is not None:
            body += struct.pack("<I", core.early_capability_flags)
    return _block(BlockType.SC_CORE, body)


def build_server_network(net: ServerNetwork) -> bytes:
    ids = net.channel_ids
    body = struct.pack(f"<HH{len(ids)}H", net.io_channel, len(ids), *ids)
    return _block(BlockType.SC_NET, body + (b"\x00\x00" if len(ids) % 2 else b""))


def build_server_security(sec: ServerSecurity) -> bytes:
    body = struct.pack("<II", sec.encryption_method, sec.encryption_level)
    if sec.server_random or sec.certificate_bytes:
        body += struct.pack("<II", len(sec.server_random), len(sec.certificate_bytes))
        body += sec.server_random + sec.certificate_bytes
    return _block(BlockType.SC_SECURITY, body)


def build_conference_create_response(user_data: bytes) -> bytes:
    """Server blocks wrapped like Windows does (connectPDU length 0x2a, as 4.1.4 shows)."""
    key = b"\x00" + per.encode_object_identifier(T124_OID)
    return key + b"\x2a" + _CCRSP_HEAD + struct.pack(">H", 0x8000 | len(user_data)) + user_data


def build_server_data(data: ServerData) -> bytes:
    blocks = b""
    if data.core:
        blocks += build_server_core(data.core)
    if data.network:
        blocks += build_server_network(data.network)
    if data.security:
        blocks += build_server_security(data.security)
    return build_conference_create_response(blocks)
