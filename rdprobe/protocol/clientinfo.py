"""Client Info PDU: TS_INFO_PACKET and TS_EXTENDED_INFO_PACKET.

MS-RDPBCGR 2.2.1.11.1.1 (TS_INFO_PACKET), 2.2.1.11.1.1.1 (TS_EXTENDED_INFO_PACKET),
2.2.1.11.1.1.1.1 (TS_TIME_ZONE_INFORMATION, 172 bytes). Strings are UTF-16LE with a terminating
null that the cb* lengths do not count. rdprobe sends this without credentials: empty user,
domain and password and no INFO_AUTOLOGON. The builder takes them (a later opt-in feature
carries credentials) but ``InfoPacket`` never shows a password in its repr or to_dict.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from rdprobe.protocol.errors import ProtocolError

AF_INET = 0x0002
AF_INET6 = 0x0017
TIME_ZONE_LEN = 172
MAX_FIELD = 512  # bytes; the spec caps user name and password at 512 (with newer servers)


class InfoFlag(enum.IntFlag):
    INFO_MOUSE = 0x00000001
    INFO_DISABLECTRLALTDEL = 0x00000002
    INFO_AUTOLOGON = 0x00000008
    INFO_UNICODE = 0x00000010
    INFO_MAXIMIZESHELL = 0x00000020
    INFO_LOGONNOTIFY = 0x00000040
    INFO_COMPRESSION = 0x00000080
    INFO_ENABLEWINDOWSKEY = 0x00000100
    INFO_REMOTECONSOLEAUDIO = 0x00002000
    INFO_FORCE_ENCRYPTED_CS_PDU = 0x00004000
    INFO_RAIL = 0x00008000
    INFO_LOGONERRORS = 0x00010000
    INFO_MOUSE_HAS_WHEEL = 0x00020000
    INFO_PASSWORD_IS_SC_PIN = 0x00040000
    INFO_NOAUDIOPLAYBACK = 0x00080000
    INFO_USING_SAVED_CREDS = 0x00100000
    INFO_AUDIOCAPTURE = 0x00200000
    INFO_VIDEO_DISABLE = 0x00400000
    INFO_RESERVED1 = 0x00800000
    INFO_RESERVED2 = 0x01000000
    INFO_HIDEF_RAIL_SUPPORTED = 0x02000000


class PerformanceFlag(enum.IntFlag):
    PERF_DISABLE_WALLPAPER = 0x00000001
    PERF_DISABLE_FULLWINDOWDRAG = 0x00000002
    PERF_DISABLE_MENUANIMATIONS = 0x00000004
    PERF_DISABLE_THEMING = 0x00000008
    PERF_RESERVED1 = 0x00000010
    PERF_DISABLE_CURSOR_SHADOW = 0x00000020
    PERF_DISABLE_CURSORSETTINGS = 0x00000040
    PERF_ENABLE_FONT_SMOOTHING = 0x00000080
    PERF_ENABLE_DESKTOP_COMPOSITION = 0x00000100
    PERF_RESERVED2 = 0x80000000


#: What a probe announces: what mstsc calls a normal logon (mouse, no Ctrl+Alt+Del, Unicode,
#: maximised shell; xrdp refuses a Client Info without all four), logon notifications and
#: errors, and no autologon.
PROBE_FLAGS = (
    InfoFlag.INFO_MOUSE
    | InfoFlag.INFO_UNICODE
    | InfoFlag.INFO_MAXIMIZESHELL
    | InfoFlag.INFO_DISABLECTRLALTDEL
    | InfoFlag.INFO_LOGONNOTIFY
    | InfoFlag.INFO_LOGONERRORS
)
PROBE_PERFORMANCE = (
    PerformanceFlag.PERF_DISABLE_WALLPAPER
    | PerformanceFlag.PERF_DISABLE_FULLWINDOWDRAG
    | PerformanceFlag.PERF_DISABLE_MENUANIMATIONS
    | PerformanceFlag.PERF_DISABLE_THEMING
)


@dataclass(frozen=True)
class InfoPacket:
    flags: int = PROBE_FLAGS
    code_page: int = 0
    domain: str = ""
    user_name: str = ""
    password: str = field(default="", repr=False)  # never shown; later opt-in feature only
    alternate_shell: str = ""
    working_dir: str = ""
    client_address: str | None = "0.0.0.0"  # None: no extended info (RDP 4.0 style)
    client_dir: str = "C:\\Windows\\System32\\mstscax.dll"
    time_zone: bytes = b"\x00" * TIME_ZONE_LEN
    session_id: int = 0
    performance_flags: int = PROBE_PERFORMANCE

    @property
    def autologon(self) -> bool:
        return bool(self.flags & InfoFlag.INFO_AUTOLOGON)

    def to_dict(self) -> dict[str, object]:
        """Everything but the password (its presence only)."""
        return {
            "flags": [f.name for f in InfoFlag if f & self.flags],
            "domain": self.domain,
            "user_name": self.user_name,
            "password_present": bool(self.password),
            "client_address": self.client_address,
            "performance_flags": self.performance_flags,
        }


def _utf16(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    if len(raw) > MAX_FIELD:
        raise ProtocolError(f"Client Info field of {len(raw)} bytes exceeds {MAX_FIELD}")
    return raw


def build_info_packet(info: InfoPacket = InfoPacket()) -> bytes:
    """TS_INFO_PACKET (+ TS_EXTENDED_INFO_PACKET unless client_address is None)."""
    fields = [
        _utf16(v)
        for v in (info.domain, info.user_name, info.password, info.alternate_shell,
                  info.working_dir)
    ]  # fmt: skip
    out = struct.pack("<II", info.code_page, info.flags)
    out += struct.pack("<HHHHH", *(len(f) for f in fields))
    out += b"".join(f + b"\x00\x00" for f in fields)
    if info.client_address is None:
        return out
    family = AF_INET6 if ":" in info.client_address else AF_INET
    address = _utf16(info.client_address) + b"\x00\x00"
    directory = _utf16(info.client_dir) + b"\x00\x00"
    if len(info.time_zone) != TIME_ZONE_LEN:
        raise ProtocolError(f"time zone of {len(info.time_zone)} bytes, expected 172")
    out += struct.pack("<HH", family, len(address)) + address
    out += struct.pack("<H", len(directory)) + directory
    out += info.time_zone + struct.pack("<II", info.session_id, info.performance_flags)
    return out + struct.pack("<H", 0)  # cbAutoReconnectCookie: none


def _text(data: bytes, pos: int, length: int, what: str) -> tuple[str, int]:
    end = pos + length + 2
    if length % 2 or end > len(data):
        raise ProtocolError(f"{what} of {length} bytes does not fit", pos)
    if data[end - 2 : end] != b"\x00\x00":
        raise ProtocolError(f"{what} lacks its null terminator", end - 2)
    return data[pos : end - 2].decode("utf-16-le", errors="replace"), end


def parse_info_packet(data: bytes) -> InfoPacket:
    """TS_INFO_PACKET as a capture shows it in clear (Unicode form only)."""
    if len(data) < 18:
        raise ProtocolError(f"TS_INFO_PACKET of {len(data)} bytes, at least 18 expected", 0)
    code_page, flags = struct.unpack_from("<II", data, 0)
    if not flags & InfoFlag.INFO_UNICODE:
        raise ProtocolError("ANSI Client Info packets are not decoded", 4)
    lengths = struct.unpack_from("<HHHHH", data, 8)
    pos, texts = 18, []
    for length, what in zip(lengths, ("Domain", "UserName", "Password", "AlternateShell",
                                      "WorkingDir"), strict=True):  # fmt: skip
        text, pos = _text(data, pos, length, what)
        texts.append(text)
    domain, user, password, shell, directory = texts
    head = dict(flags=flags, code_page=code_page, domain=domain, user_name=user,
                password=password, alternate_shell=shell, working_dir=directory)  # fmt: skip
    if pos == len(data):
        return InfoPacket(**head, client_address=None)
    if pos + 4 > len(data):
        raise ProtocolError("truncated TS_EXTENDED_INFO_PACKET", pos)
    _family, cb_address = struct.unpack_from("<HH", data, pos)
    address, pos = _text(data, pos + 4, max(0, cb_address - 2), "clientAddress")
    if pos + 2 > len(data):
        raise ProtocolError("truncated cbClientDir", pos)
    (cb_dir,) = struct.unpack_from("<H", data, pos)
    client_dir, pos = _text(data, pos + 2, max(0, cb_dir - 2), "clientDir")
    if pos + TIME_ZONE_LEN + 8 > len(data):
        raise ProtocolError("truncated clientTimeZone / session id / performance flags", pos)
    zone = bytes(data[pos : pos + TIME_ZONE_LEN])
    session_id, perf = struct.unpack_from("<II", data, pos + TIME_ZONE_LEN)
    return InfoPacket(
        **head, client_address=address, client_dir=client_dir,
        time_zone=zone, session_id=session_id, performance_flags=perf,
    )  # fmt: skip
