"""Share Control / Share Data headers and the server PDUs of the capability exchange.

MS-RDPBCGR 2.2.8.1.1.1.1 (TS_SHARECONTROLHEADER), 2.2.8.1.1.1.2 (TS_SHAREDATAHEADER),
2.2.1.13.1.1 (Demand Active: shareId, sourceDescriptor, capability sets, sessionId),
2.2.3.1.1 (Deactivate All), 2.2.5.1.1 (Set Error Info: a data PDU with one errorInfo u32).
The capability sets themselves are in ``rdprobe.protocol.capabilities``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rdprobe.protocol import capabilities
from rdprobe.protocol.errinfo import error_info_name
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.names import enum_name

TS_PROTOCOL_VERSION = 0x10
FLOW_MARKER = 0x8000  # totalLength of a flow PDU (2.2.8.1.1.1.1)


class PduType(enum.IntEnum):
    PDUTYPE_DEMANDACTIVEPDU = 0x1
    PDUTYPE_CONFIRMACTIVEPDU = 0x3
    PDUTYPE_DEACTIVATEALLPDU = 0x6
    PDUTYPE_DATAPDU = 0x7
    PDUTYPE_SERVER_REDIR_PKT = 0xA


class PduType2(enum.IntEnum):
    PDUTYPE2_UPDATE = 2
    PDUTYPE2_CONTROL = 20
    PDUTYPE2_POINTER = 27
    PDUTYPE2_INPUT = 28
    PDUTYPE2_SYNCHRONIZE = 31
    PDUTYPE2_REFRESH_RECT = 33
    PDUTYPE2_PLAY_SOUND = 34
    PDUTYPE2_SUPPRESS_OUTPUT = 35
    PDUTYPE2_SHUTDOWN_REQUEST = 36
    PDUTYPE2_SHUTDOWN_DENIED = 37
    PDUTYPE2_SAVE_SESSION_INFO = 38
    PDUTYPE2_FONTLIST = 39
    PDUTYPE2_FONTMAP = 40
    PDUTYPE2_SET_KEYBOARD_INDICATORS = 41
    PDUTYPE2_BITMAPCACHE_PERSISTENT_LIST = 43
    PDUTYPE2_BITMAPCACHE_ERROR_PDU = 44
    PDUTYPE2_SET_KEYBOARD_IME_STATUS = 45
    PDUTYPE2_OFFSCRCACHE_ERROR_PDU = 46
    PDUTYPE2_SET_ERROR_INFO_PDU = 47
    PDUTYPE2_DRAWNINEGRID_ERROR_PDU = 48
    PDUTYPE2_DRAWGDIPLUS_ERROR_PDU = 49
    PDUTYPE2_ARC_STATUS_PDU = 50
    PDUTYPE2_STATUS_INFO_PDU = 54
    PDUTYPE2_MONITOR_LAYOUT_PDU = 55


def _name(table: type[enum.IntEnum], value: int) -> str:
    return enum_name(table, value)


@dataclass(frozen=True)
class ShareControlHeader:
    total_length: int
    pdu_type: int  # the low 4 bits of pduType
    version: int
    source: int

    @property
    def type_name(self) -> str:
        return _name(PduType, self.pdu_type)


@dataclass(frozen=True)
class DemandActive:
    share_id: int
    source_descriptor: bytes
    capability_sets: tuple[capabilities.CapabilitySet, ...]
    session_id: int | None

    def find(self, cap_type: int) -> capabilities.CapabilitySet | None:
        return next((c for c in self.capability_sets if c.cap_type == cap_type), None)


@dataclass(frozen=True)
class DeactivateAll:
    share_id: int
    source_descriptor: bytes


@dataclass(frozen=True)
class DataPdu:
    """A share data PDU other than Set Error Info: its type and body, undecoded."""

    share_id: int
    pdu_type2: int
    body: bytes

    @property
    def type2_name(self) -> str:
        return _name(PduType2, self.pdu_type2)


@dataclass(frozen=True)
class SetErrorInfo:
    share_id: int
    error_info: int

    @property
    def name(self) -> str:
        return error_info_name(self.error_info)


@dataclass(frozen=True)
class OtherSharePdu:
    header: ShareControlHeader
    body: bytes


SharePdu = DemandActive | DeactivateAll | SetErrorInfo | DataPdu | OtherSharePdu


def _u16(data: bytes, pos: int, what: str) -> int:
    if pos + 2 > len(data):
        raise ProtocolError(f"truncated {what}", pos)
    return struct.unpack_from("<H", data, pos)[0]


def _u32(data: bytes, pos: int, what: str) -> int:
    if pos + 4 > len(data):
        raise ProtocolError(f"truncated {what}", pos)
    return struct.unpack_from("<I", data, pos)[0]


def parse_control_header(data: bytes) -> ShareControlHeader:
    total = _u16(data, 0, "totalLength")
    if total == FLOW_MARKER:
        raise ProtocolError("flow control PDU, not a share PDU", 0)
    pdu_type = _u16(data, 2, "pduType")
    source = _u16(data, 4, "pduSource") if total >= 6 else 0
    if total < 4 or total > len(data):
        raise ProtocolError(f"share control totalLength {total} for {len(data)} bytes", 0)
    return ShareControlHeader(total, pdu_type & 0x0F, pdu_type & 0xFFF0, source)


def build_control_header(pdu_type: int, source: int, body: bytes) -> bytes:
    return struct.pack("<HHH", len(body) + 6, pdu_type | TS_PROTOCOL_VERSION, source) + body


def build_data_pdu(share_id: int, source: int, pdu_type2: int, payload: bytes) -> bytes:
    """TS_SHAREDATAHEADER (streamId STREAM_LOW, no compression) around ``payload``."""
    head = struct.pack("<IBBHBBH", share_id, 0, 1, len(payload) + 18, pdu_type2, 0, 0)
    return build_control_header(PduType.PDUTYPE_DATAPDU, source, head + payload)


def build_set_error_info(error_info: int, share_id: int = 0) -> bytes:
    return build_data_pdu(share_id, 0, PduType2.PDUTYPE2_SET_ERROR_INFO_PDU,
                          struct.pack("<I", error_info))  # fmt: skip


def build_demand_active(
    share_id: int,
    sets: bytes,
    number: int,
    *,
    source: int = 1002,
    descriptor: bytes = b"RDP\x00",
    session_id: int | None = 0,
) -> bytes:
    body = struct.pack("<IHH", share_id, len(descriptor), len(sets) + 4) + descriptor
    body += struct.pack("<HH", number, 0) + sets
    if session_id is not None:
        body += struct.pack("<I", session_id)
    return build_control_header(PduType.PDUTYPE_DEMANDACTIVEPDU, source, body)


def build_deactivate_all(share_id: int, source: int = 1002) -> bytes:
    body = struct.pack("<IH", share_id, 1) + b"\x00"
    return build_control_header(PduType.PDUTYPE_DEACTIVATEALLPDU, source, body)


def _parse_demand_active(body: bytes) -> DemandActive:
    share_id = _u32(body, 0, "shareId")
    len_source = _u16(body, 4, "lengthSourceDescriptor")
    len_caps = _u16(body, 6, "lengthCombinedCapabilities")
    pos = 8 + len_source
    if pos > len(body):
        raise ProtocolError(f"sourceDescriptor of {len_source} bytes does not fit", 4)
    descriptor = bytes(body[8:pos])
    caps_end = pos + len_caps
    if len_caps < 4 or caps_end > len(body):
        raise ProtocolError(f"lengthCombinedCapabilities {len_caps} does not fit", 6)
    number = _u16(body, pos, "numberCapabilities")
    sets = capabilities.parse_sets(body[pos + 4 : caps_end], number)
    session_id = _u32(body, caps_end, "sessionId") if caps_end + 4 <= len(body) else None
    return DemandActive(share_id, descriptor, sets, session_id)


def parse_share_pdu(data: bytes) -> SharePdu:
    """One share control PDU (the plaintext after the security header)."""
    header = parse_control_header(data)
    body = bytes(data[6 : header.total_length])
    if header.pdu_type == PduType.PDUTYPE_DEMANDACTIVEPDU:
        return _parse_demand_active(body)
    if header.pdu_type == PduType.PDUTYPE_DEACTIVATEALLPDU:
        share_id = _u32(body, 0, "shareId")
        length = _u16(body, 4, "lengthSourceDescriptor")
        if 6 + length > len(body):
            raise ProtocolError(f"sourceDescriptor of {length} bytes does not fit", 10)
        return DeactivateAll(share_id, body[6 : 6 + length])
    if header.pdu_type == PduType.PDUTYPE_DATAPDU:
        if len(body) < 12:
            raise ProtocolError(f"share data header of {len(body)} bytes, 12 expected", 6)
        share_id, _pad, _stream, _ulen, type2, compressed, _clen = struct.unpack_from(
            "<IBBHBBH", body, 0
        )
        payload = body[12:]
        if type2 == PduType2.PDUTYPE2_SET_ERROR_INFO_PDU:
            if compressed & 0x20:
                raise ProtocolError("compressed Set Error Info PDU", 14)
            return SetErrorInfo(share_id, _u32(payload, 0, "errorInfo"))
        return DataPdu(share_id, type2, payload)
    return OtherSharePdu(header, body)
