"""GCC server data: the RDP server blocks of a Conference Create Response (MCS Connect-Response).

MS-RDPBCGR 2.2.1.4.2 TS_UD_SC_CORE, 2.2.1.4.3 TS_UD_SC_SEC1, 2.2.1.4.4 TS_UD_SC_NET, plus the
message channel (2.2.1.4.5) and multitransport (2.2.1.4.6) values: parsers (what the server sent)
and builders (what the emulator serves). A malformed server certificate does not fail the parse:
it is kept as bytes plus ``certificate_error`` (it is a finding, not a crash). The shared framing
and wrappers are in ``rdprobe.protocol.gcc``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rdprobe.protocol import per, rdpsec
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.gcc import (
    SERVER_KEY,
    SHORT_LEVEL,
    SHORT_METHOD,
    BlockType,
    _block,
    _read_key_header,
    _u16,
    _u32,
    _user_data_after,
    build_conference_create_response,
    split_blocks,
    version_name,
)


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


def build_server_data(data: ServerData) -> bytes:
    blocks = b""
    if data.core:
        blocks += build_server_core(data.core)
    if data.network:
        blocks += build_server_network(data.network)
    if data.security:
        blocks += build_server_security(data.security)
    return build_conference_create_response(blocks)
