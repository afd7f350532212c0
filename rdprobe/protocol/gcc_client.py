"""GCC client data: the RDP client blocks of a Conference Create Request (MCS Connect-Initial).

MS-RDPBCGR 2.2.1.3.2 TS_UD_CS_CORE, 2.2.1.3.3 TS_UD_CS_SEC, 2.2.1.3.4 TS_UD_CS_NET and
2.2.1.3.5 TS_UD_CS_CLUSTER: builders (what rdprobe sends) and the parser (what a capture shows).
The shared framing and wrappers are in ``rdprobe.protocol.gcc``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rdprobe.protocol import per
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.gcc import (
    CLIENT_KEY,
    HIGH_COLOR_DEPTHS,
    BlockType,
    _block,
    _read_key_header,
    _u32,
    _user_data_after,
    _utf16z,
    build_conference_create_request,
    method_names,
    split_blocks,
)


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
    (version, width, height, depth, sas, layout, build, name, kb_type, kb_sub, kb_fn) = (
        struct.unpack_from("<IHHHHII32sIII", body, 0)
    )

    def opt_int(offset: int, size: int) -> int | None:
        """An optional trailing field: None when the client's block ends before it."""
        if len(body) < offset + size:
            return None
        return int.from_bytes(body[offset : offset + size], "little")

    return ClientCore(
        version,
        width,
        height,
        depth,
        sas,
        layout,
        build,
        _utf16z(name),
        kb_type,
        kb_sub,
        kb_fn,
        post_beta2_color_depth=opt_int(128, 2),
        client_product_id=opt_int(130, 2),
        high_color_depth=opt_int(136, 2),
        supported_color_depths=opt_int(138, 2),
        early_capability_flags=opt_int(140, 2),
        client_dig_product_id=None if len(body) < 142 + 64 else _utf16z(body[142 : 142 + 64]),
        connection_type=opt_int(206, 1),
        server_selected_protocol=opt_int(208, 4),
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
