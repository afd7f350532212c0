"""The client's half of capability exchange and connection finalization, and the server's
logon notification: what a logon needs after the Demand Active.

MS-RDPBCGR 2.2.1.13.2 (Confirm Active, with the capability sets 2.2.1.13.2.1 says a client
sends), 2.2.1.14 (Synchronize), 2.2.1.15-2.2.1.16 (Control Cooperate / Request Control),
2.2.1.18 (Font List), 2.2.10.1 (Save Session Info: the logon notification, with the logon
errors of 2.2.10.1.1.4.1.1 when the Client Info asked for them with INFO_LOGONERRORS).
Builders and parsers side by side; only ProtocolError escapes a parser.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rdprobe.protocol import capabilities
from rdprobe.protocol.capabilities import CapsType
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.names import enum_name
from rdprobe.protocol.share import PduType, PduType2, build_control_header, build_data_pdu

#: General capability extraFlags: FASTPATH_OUTPUT_SUPPORTED, LONG_CREDENTIALS, AUTORECONNECT,
#: ENC_SALTED_CHECKSUM, NO_BITMAP_COMPRESSION_HDR (2.2.7.1.1). Fast-path output is announced:
#: FreeRDP's server ends the connection at its first screen update without it (measured).
GENERAL_EXTRA_FLAGS = 0x041D
SERVER_CHANNEL_ID = 0x03EA  #: originatorId / targetUser: the server's MCS channel (1002)
SOURCE_DESCRIPTOR = b"MSTSC\x00"


class InfoType(enum.IntEnum):
    """Save Session Info infoType (2.2.10.1.1)."""

    INFOTYPE_LOGON = 0x00000000
    INFOTYPE_LOGON_LONG = 0x00000001
    INFOTYPE_LOGON_PLAINNOTIFY = 0x00000002
    INFOTYPE_LOGON_EXTENDED_INFO = 0x00000003


class LogonErrorType(enum.IntEnum):
    """TS_LOGON_ERRORS_INFO errorNotificationType (2.2.10.1.1.4.1.1)."""

    LOGON_FAILED_BAD_PASSWORD = 0x00000000
    LOGON_FAILED_UPDATE_PASSWORD = 0x00000001
    LOGON_FAILED_OTHER = 0x00000002
    LOGON_WARNING = 0x00000003


class LogonErrorData(enum.IntEnum):
    """TS_LOGON_ERRORS_INFO errorNotificationData (2.2.10.1.1.4.1.1); any other value is a
    session identifier."""

    LOGON_MSG_SESSION_BUSY_OPTIONS = 0xFFFFFFF8
    LOGON_MSG_DISCONNECT_REFUSED = 0xFFFFFFF9
    LOGON_MSG_NO_PERMISSION = 0xFFFFFFFA
    LOGON_MSG_BUMP_OPTIONS = 0xFFFFFFFB
    LOGON_MSG_RECONNECT_OPTIONS = 0xFFFFFFFC
    LOGON_MSG_SESSION_TERMINATE = 0xFFFFFFFD
    LOGON_MSG_SESSION_CONTINUE = 0xFFFFFFFE


LOGON_EX_AUTORECONNECTCOOKIE = 0x00000001
LOGON_EX_LOGONERRORS = 0x00000002


def _name(table: type[enum.IntEnum], value: int) -> str:
    return enum_name(table, value, unknown="0x{value:08x}")


def client_capability_sets() -> tuple[bytes, int]:
    """(the sets, their number): the ones 2.2.1.13.2.1 lists for a client, minimal values:
    no orders, no caches, no glyphs, no sound, 32 bpp bitmaps."""
    sets = [
        capabilities.build_general(extra=GENERAL_EXTRA_FLAGS),
        capabilities.build_bitmap(),
        # order: no drawing orders (orderFlags NEGOTIATEORDERSUPPORT|ZEROBOUNDSDELTA|COLORINDEX)
        capabilities.build_set(
            CapsType.CAPSTYPE_ORDER,
            bytes(16)
            + struct.pack("<IHHHHHH", 0, 1, 20, 0, 1, 0, 0x002A)
            + bytes(32)
            + struct.pack("<HHIIHHHH", 0, 0, 0, 480 * 480, 0, 0, 0, 0),
        ),
        capabilities.build_set(CapsType.CAPSTYPE_BITMAPCACHE, bytes(24) + bytes(12)),
        capabilities.build_set(CapsType.CAPSTYPE_POINTER, struct.pack("<HHH", 1, 20, 21)),
        capabilities.build_set(
            CapsType.CAPSTYPE_INPUT, struct.pack("<HHIIII", 0x0011, 0, 0x409, 4, 0, 12) + bytes(64)
        ),
        capabilities.build_set(CapsType.CAPSTYPE_BRUSH, struct.pack("<I", 0)),
        capabilities.build_set(
            CapsType.CAPSTYPE_GLYPHCACHE, bytes(40) + struct.pack("<IHH", 0, 0, 0)
        ),
        capabilities.build_set(CapsType.CAPSTYPE_OFFSCREENCACHE, struct.pack("<IHH", 0, 0, 0)),
        capabilities.build_set(CapsType.CAPSTYPE_VIRTUALCHANNEL, struct.pack("<II", 0, 1600)),
        capabilities.build_set(CapsType.CAPSTYPE_SOUND, struct.pack("<HH", 0, 0)),
        capabilities.build_set(CapsType.CAPSTYPE_CONTROL, struct.pack("<HHHH", 0, 0, 2, 2)),
        capabilities.build_set(CapsType.CAPSTYPE_ACTIVATION, struct.pack("<HHHH", 0, 0, 0, 0)),
        capabilities.build_set(CapsType.CAPSTYPE_SHARE, struct.pack("<HH", 0, 0)),
        capabilities.build_set(CapsType.CAPSTYPE_FONT, struct.pack("<HH", 1, 0)),
    ]
    return b"".join(sets), len(sets)


def build_confirm_active(share_id: int, user_channel: int) -> bytes:
    """TS_CONFIRM_ACTIVE_PDU (2.2.1.13.2.1), sent from the client's user channel."""
    sets, number = client_capability_sets()
    body = struct.pack("<IHHH", share_id, SERVER_CHANNEL_ID, len(SOURCE_DESCRIPTOR), len(sets) + 4)
    body += SOURCE_DESCRIPTOR + struct.pack("<HH", number, 0) + sets
    return build_control_header(PduType.PDUTYPE_CONFIRMACTIVEPDU, user_channel, body)


def build_finalization(share_id: int, user_channel: int) -> list[bytes]:
    """Synchronize, Control Cooperate, Control Request Control, Font List (1.3.1.1 order)."""

    def data(pdu_type2: int, payload: bytes) -> bytes:
        return build_data_pdu(share_id, user_channel, pdu_type2, payload)

    return [
        data(PduType2.PDUTYPE2_SYNCHRONIZE, struct.pack("<HH", 1, SERVER_CHANNEL_ID)),
        data(PduType2.PDUTYPE2_CONTROL, struct.pack("<HHI", 4, 0, 0)),  # CTRLACTION_COOPERATE
        data(PduType2.PDUTYPE2_CONTROL, struct.pack("<HHI", 1, 0, 0)),  # REQUEST_CONTROL
        data(PduType2.PDUTYPE2_FONTLIST, struct.pack("<HHHH", 0, 0, 0x0003, 0x0032)),
    ]


@dataclass(frozen=True)
class LogonNotification:
    """What a Save Session Info PDU says (2.2.10.1.1)."""

    info_type: int
    session_id: int | None = None
    error_type: int | None = None
    error_data: int | None = None

    @property
    def info_type_name(self) -> str:
        return _name(InfoType, self.info_type)

    @property
    def error_name(self) -> str | None:
        return None if self.error_type is None else _name(LogonErrorType, self.error_type)

    @property
    def error_data_name(self) -> str | None:
        if self.error_data is None:
            return None
        if self.error_data in LogonErrorData._value2member_map_:
            return LogonErrorData(self.error_data).name
        return f"session {self.error_data}"

    @property
    def logged_on(self) -> bool:
        """A logon notification without a logon error: the user's session exists."""
        return self.error_type is None

    @property
    def final(self) -> bool:
        """False for winlogon's "continuing with the logon" notice (LOGON_MSG_SESSION_CONTINUE):
        another notification follows."""
        return self.error_data != LogonErrorData.LOGON_MSG_SESSION_CONTINUE

    def to_dict(self) -> dict[str, object]:
        return {
            "info_type": self.info_type_name,
            "session_id": self.session_id,
            "logon_error": self.error_name,
            "logon_error_data": self.error_data_name,
        }


def parse_save_session_info(payload: bytes) -> LogonNotification:
    """The payload of a PDUTYPE2_SAVE_SESSION_INFO data PDU."""
    if len(payload) < 4:
        raise ProtocolError(f"Save Session Info of {len(payload)} bytes", 0)
    info_type = struct.unpack_from("<I", payload, 0)[0]
    body = payload[4:]
    if info_type == InfoType.INFOTYPE_LOGON:  # TS_LOGON_INFO: cbDomain, Domain[52], ...
        session = _u32(body, 4 + 52 + 4 + 512, "SessionId")
        return LogonNotification(info_type, session)
    if info_type == InfoType.INFOTYPE_LOGON_LONG:  # TS_LOGON_INFO_VERSION_2
        return LogonNotification(info_type, _u32(body, 6, "SessionId"))
    if info_type == InfoType.INFOTYPE_LOGON_PLAINNOTIFY:
        return LogonNotification(info_type)
    if info_type == InfoType.INFOTYPE_LOGON_EXTENDED_INFO:
        length = _u16(body, 0, "Length")
        present = _u32(body, 2, "FieldsPresent")
        if length > len(body):
            raise ProtocolError(f"logon extended info of {length} bytes does not fit", 4)
        pos = 6
        for flag in (LOGON_EX_AUTORECONNECTCOOKIE, LOGON_EX_LOGONERRORS):
            if not present & flag:
                continue
            size = _u32(body, pos, "cbFieldData")
            pos += 4
            if pos + size > len(body):
                raise ProtocolError(f"logon field of {size} bytes does not fit", pos + 4)
            if flag == LOGON_EX_LOGONERRORS:
                if size < 8:
                    raise ProtocolError(f"TS_LOGON_ERRORS_INFO of {size} bytes", pos + 4)
                kind, data = struct.unpack_from("<II", body, pos)
                return LogonNotification(info_type, None, kind, data)
            pos += size
        return LogonNotification(info_type)
    raise ProtocolError(f"unknown Save Session Info infoType {info_type}", 0)


def build_save_session_info(notification: LogonNotification) -> bytes:
    """The payload of a Save Session Info PDU (emulator and tests)."""
    head = struct.pack("<I", notification.info_type)
    if notification.info_type == InfoType.INFOTYPE_LOGON:
        return (
            head
            + struct.pack("<I", 0)
            + bytes(52)
            + struct.pack("<I", 0)
            + bytes(512)
            + struct.pack("<I", notification.session_id or 0)
        )
    if notification.info_type == InfoType.INFOTYPE_LOGON_LONG:
        return (
            head
            + struct.pack("<HIIII", 1, 18, notification.session_id or 0, 0, 0)
            + bytes(558)
            + bytes(2)
            + bytes(2)
        )
    if notification.info_type == InfoType.INFOTYPE_LOGON_PLAINNOTIFY:
        return head + bytes(576)
    fields = b""
    present = 0
    if notification.error_type is not None:
        present |= LOGON_EX_LOGONERRORS
        fields += struct.pack("<III", 8, notification.error_type, notification.error_data or 0)
    return head + struct.pack("<HI", 6 + len(fields), present) + fields + bytes(570)


def _u16(data: bytes, pos: int, what: str) -> int:
    if pos + 2 > len(data):
        raise ProtocolError(f"truncated {what}", pos)
    return struct.unpack_from("<H", data, pos)[0]


def _u32(data: bytes, pos: int, what: str) -> int:
    if pos + 4 > len(data):
        raise ProtocolError(f"truncated {what}", pos)
    return struct.unpack_from("<I", data, pos)[0]
