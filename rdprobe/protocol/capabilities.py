"""Capability sets of the Demand Active PDU, every type by name, the common ones decoded.

MS-RDPBCGR 2.2.1.13.1.1.1 (TS_CAPS_SET: type u16, length u16 incl. the header), 2.2.7.1.1
general (OS type), 2.2.7.1.2 bitmap (desktop size, colour depth), 2.2.7.1.3 order,
2.2.7.1.5 pointer, 2.2.7.1.6 input, 2.2.7.1.10 virtual channel, 2.2.7.2.6 multifragment
update, 2.2.7.2.7 large pointer; others (2.2.7.x, MS-RDPERP, MS-RDPEGDI) are kept by name with
their raw bytes. A decoded set keeps only the fields a probe reports.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.names import enum_name

MAX_SETS = 64


class CapsType(enum.IntEnum):
    CAPSTYPE_GENERAL = 1
    CAPSTYPE_BITMAP = 2
    CAPSTYPE_ORDER = 3
    CAPSTYPE_BITMAPCACHE = 4
    CAPSTYPE_CONTROL = 5
    CAPSTYPE_ACTIVATION = 7
    CAPSTYPE_POINTER = 8
    CAPSTYPE_SHARE = 9
    CAPSTYPE_COLORCACHE = 10
    CAPSTYPE_SOUND = 12
    CAPSTYPE_INPUT = 13
    CAPSTYPE_FONT = 14
    CAPSTYPE_BRUSH = 15
    CAPSTYPE_GLYPHCACHE = 16
    CAPSTYPE_OFFSCREENCACHE = 17
    CAPSTYPE_BITMAPCACHE_HOSTSUPPORT = 18
    CAPSTYPE_BITMAPCACHE_REV2 = 19
    CAPSTYPE_VIRTUALCHANNEL = 20
    CAPSTYPE_DRAWNINEGRIDCACHE = 21
    CAPSTYPE_DRAWGDIPLUS = 22
    CAPSTYPE_RAIL = 23
    CAPSTYPE_WINDOW = 24
    CAPSETTYPE_COMPDESK = 25
    CAPSETTYPE_MULTIFRAGMENTUPDATE = 26
    CAPSETTYPE_LARGE_POINTER = 27
    CAPSETTYPE_SURFACE_COMMANDS = 28
    CAPSETTYPE_BITMAP_CODECS = 29
    CAPSSETTYPE_FRAME_ACKNOWLEDGE = 30


class OsMajorType(enum.IntEnum):
    OSMAJORTYPE_UNSPECIFIED = 0
    OSMAJORTYPE_WINDOWS = 1
    OSMAJORTYPE_OS2 = 2
    OSMAJORTYPE_MACINTOSH = 3
    OSMAJORTYPE_UNIX = 4
    OSMAJORTYPE_IOS = 5
    OSMAJORTYPE_OSX = 6
    OSMAJORTYPE_ANDROID = 7
    OSMAJORTYPE_CHROME_OS = 8


class OsMinorType(enum.IntEnum):
    OSMINORTYPE_UNSPECIFIED = 0
    OSMINORTYPE_WINDOWS_31X = 1
    OSMINORTYPE_WINDOWS_95 = 2
    OSMINORTYPE_WINDOWS_NT = 3
    OSMINORTYPE_OS2_V21 = 4
    OSMINORTYPE_POWER_PC = 5
    OSMINORTYPE_MACINTOSH = 6
    OSMINORTYPE_NATIVE_XSERVER = 7
    OSMINORTYPE_PSEUDO_XSERVER = 8
    OSMINORTYPE_WINDOWS_RT = 9


class GeneralExtraFlag(enum.IntFlag):
    FASTPATH_OUTPUT_SUPPORTED = 0x0001
    LONG_CREDENTIALS_SUPPORTED = 0x0004
    AUTORECONNECT_SUPPORTED = 0x0008
    ENC_SALTED_CHECKSUM = 0x0010
    NO_BITMAP_COMPRESSION_HDR = 0x0400


class InputFlag(enum.IntFlag):
    INPUT_FLAG_SCANCODES = 0x0001
    INPUT_FLAG_MOUSEX = 0x0004
    INPUT_FLAG_FASTPATH_INPUT = 0x0008
    INPUT_FLAG_UNICODE = 0x0010
    INPUT_FLAG_FASTPATH_INPUT2 = 0x0020
    INPUT_FLAG_UNUSED1 = 0x0040
    INPUT_FLAG_MOUSE_RELATIVE = 0x0080
    TS_INPUT_FLAG_MOUSE_HWHEEL = 0x0100
    TS_INPUT_FLAG_QOE_TIMESTAMPS = 0x0200


def _name(table: type[enum.IntEnum], value: int) -> str:
    return enum_name(table, value)


def flag_names(flag_type: type[enum.IntFlag], value: int) -> list[str]:
    return [f.name for f in flag_type if f & value and f.name]


@dataclass(frozen=True)
class CapabilitySet:
    """One set: its type, raw body, and the decoded fields (name -> value) a report shows."""

    cap_type: int
    body: bytes = field(repr=False)
    fields: tuple[tuple[str, object], ...] = ()

    @property
    def name(self) -> str:
        return _name(CapsType, self.cap_type)

    def get(self, key: str, default: object = None) -> object:
        return dict(self.fields).get(key, default)

    def to_dict(self) -> dict[str, object]:
        return {"type": self.name, "length": len(self.body) + 4, **dict(self.fields)}


def _unpack(fmt: str, body: bytes, what: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if len(body) < size:
        raise ProtocolError(f"{what} capability of {len(body)} bytes, {size} expected", 0)
    return struct.unpack_from(fmt, body, 0)


def _general(body: bytes) -> tuple[tuple[str, object], ...]:
    major, minor, version, _pad, _comp, extra = _unpack("<HHHHHH", body[:12], "general")
    out: list[tuple[str, object]] = [
        ("os_major", _name(OsMajorType, major)),
        ("os_minor", _name(OsMinorType, minor)),
        ("protocol_version", version),
        ("extra_flags", flag_names(GeneralExtraFlag, extra)),
    ]
    if len(body) >= 20:
        refresh, suppress = body[18], body[19]
        out += [("refresh_rect", bool(refresh)), ("suppress_output", bool(suppress))]
    return tuple(out)


def _bitmap(body: bytes) -> tuple[tuple[str, object], ...]:
    bpp, _r1, _r4, _r8, width, height, _pad, resize = _unpack("<8H", body, "bitmap")
    return (("color_depth", bpp), ("desktop_width", width), ("desktop_height", height),
            ("desktop_resize", bool(resize)))  # fmt: skip


def _order(body: bytes) -> tuple[tuple[str, object], ...]:
    if len(body) < 84:
        raise ProtocolError(f"order capability of {len(body)} bytes, 84 expected", 0)
    (order_flags,) = struct.unpack_from("<H", body, 30)
    support = body[32:64]
    return (("order_flags", order_flags),
            ("orders_supported", sum(1 for b in support if b)))  # fmt: skip


def _pointer(body: bytes) -> tuple[tuple[str, object], ...]:
    color, cache = _unpack("<HH", body, "pointer")
    out: list[tuple[str, object]] = [("color_pointer", bool(color)), ("color_cache", cache)]
    if len(body) >= 6:
        out.append(("pointer_cache", struct.unpack_from("<H", body, 4)[0]))
    return tuple(out)


def _input(body: bytes) -> tuple[tuple[str, object], ...]:
    flags, _pad, layout = _unpack("<HHI", body, "input")
    return (("input_flags", flag_names(InputFlag, flags)), ("keyboard_layout", layout))


def _virtual_channel(body: bytes) -> tuple[tuple[str, object], ...]:
    (flags,) = _unpack("<I", body, "virtual channel")
    out: list[tuple[str, object]] = [("vc_compression", bool(flags & 0x1))]
    if len(body) >= 8:
        out.append(("vc_chunk_size", struct.unpack_from("<I", body, 4)[0]))
    return tuple(out)


def _multifragment(body: bytes) -> tuple[tuple[str, object], ...]:
    return (("max_request_size", _unpack("<I", body, "multifragment")[0]),)


def _large_pointer(body: bytes) -> tuple[tuple[str, object], ...]:
    (flags,) = _unpack("<H", body, "large pointer")
    return (("large_pointer_flags", flags),)


def _share(body: bytes) -> tuple[tuple[str, object], ...]:
    return (("node_id", _unpack("<H", body, "share")[0]),)


_DECODERS = {
    CapsType.CAPSTYPE_GENERAL: _general,
    CapsType.CAPSTYPE_BITMAP: _bitmap,
    CapsType.CAPSTYPE_ORDER: _order,
    CapsType.CAPSTYPE_POINTER: _pointer,
    CapsType.CAPSTYPE_INPUT: _input,
    CapsType.CAPSTYPE_VIRTUALCHANNEL: _virtual_channel,
    CapsType.CAPSETTYPE_MULTIFRAGMENTUPDATE: _multifragment,
    CapsType.CAPSETTYPE_LARGE_POINTER: _large_pointer,
    CapsType.CAPSTYPE_SHARE: _share,
}


def parse_sets(data: bytes, number: int) -> tuple[CapabilitySet, ...]:
    """``number`` TS_CAPS_SETs from ``data``; a length that overruns is an error, bytes left
    after the last set are ignored (Windows pads)."""
    if number > MAX_SETS:
        raise ProtocolError(f"{number} capability sets (at most {MAX_SETS})", 0)
    sets, pos = [], 0
    for _ in range(number):
        if pos + 4 > len(data):
            raise ProtocolError("truncated capability set header", pos)
        cap_type, length = struct.unpack_from("<HH", data, pos)
        if length < 4 or pos + length > len(data):
            raise ProtocolError(f"capability set {cap_type} length {length}", pos + 2)
        body = bytes(data[pos + 4 : pos + length])
        decoder = _DECODERS.get(cap_type)
        try:
            fields = decoder(body) if decoder else ()
        except ProtocolError as exc:
            raise ProtocolError(exc.reason, pos + 4 + exc.offset) from None
        sets.append(CapabilitySet(cap_type, body, fields))
        pos += length
    return tuple(sets)


def build_set(cap_type: int, body: bytes) -> bytes:
    return struct.pack("<HH", cap_type, len(body) + 4) + body


def build_general(major: int = 1, minor: int = 3, extra: int = 0x041D) -> bytes:
    body = struct.pack("<HHHHHHHHHBB", major, minor, 0x200, 0, 0, extra, 0, 0, 0, 1, 1)
    return build_set(CapsType.CAPSTYPE_GENERAL, body)


def build_bitmap(width: int = 1024, height: int = 768, bpp: int = 32) -> bytes:
    body = struct.pack("<8HHBBHH", bpp, 1, 1, 1, width, height, 0, 1, 1, 0, 0, 1, 0)
    return build_set(CapsType.CAPSTYPE_BITMAP, body)
