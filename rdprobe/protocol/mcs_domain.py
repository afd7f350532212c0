"""T.125 MCS domain PDUs after the Connect Response (aligned PER), as RDP uses them.

MS-RDPBCGR 2.2.1.5 (Erect Domain Request), 2.2.1.6/2.2.1.7 (Attach User Request/Confirm),
2.2.1.8/2.2.1.9 (Channel Join Request/Confirm), 2.2.2.3 / 1.3.1.1 (Send Data Request and
Indication carrying every later PDU), T.125 section 7 (DomainMCSPDU). The first octet holds the
6-bit CHOICE index; the low two bits carry a bit of optional-field bitmap or enumeration.
User ids travel as UserId = INTEGER (1001..65535), i.e. value - 1001 in two octets.
The Disconnect Provider Ultimatum lives in ``rdprobe.protocol.mcs`` and is re-used here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rdprobe.protocol import per
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.mcs import (
    DisconnectProviderUltimatum,
    Result,
    _enum_name,
    parse_disconnect_provider_ultimatum,
)

USER_ID_BASE = 1001  # T.125 UserId lower bound, subtracted on the wire
#: dataPriority high + segmentation begin|end, what every RDP sender uses.
PRIORITY_SEGMENTATION = 0x70


class DomainPdu(enum.IntEnum):
    """DomainMCSPDU CHOICE indexes (T.125 section 7, part 10)."""

    PLUMB_DOMAIN_INDICATION = 0
    ERECT_DOMAIN_REQUEST = 1
    MERGE_CHANNELS_REQUEST = 2
    MERGE_CHANNELS_CONFIRM = 3
    PURGE_CHANNELS_INDICATION = 4
    MERGE_TOKENS_REQUEST = 5
    MERGE_TOKENS_CONFIRM = 6
    PURGE_TOKENS_INDICATION = 7
    DISCONNECT_PROVIDER_ULTIMATUM = 8
    REJECT_MCSPDU_ULTIMATUM = 9
    ATTACH_USER_REQUEST = 10
    ATTACH_USER_CONFIRM = 11
    DETACH_USER_REQUEST = 12
    DETACH_USER_INDICATION = 13
    CHANNEL_JOIN_REQUEST = 14
    CHANNEL_JOIN_CONFIRM = 15
    CHANNEL_LEAVE_REQUEST = 16
    CHANNEL_CONVENE_REQUEST = 17
    CHANNEL_CONVENE_CONFIRM = 18
    CHANNEL_DISBAND_REQUEST = 19
    CHANNEL_DISBAND_INDICATION = 20
    CHANNEL_ADMIT_REQUEST = 21
    CHANNEL_ADMIT_INDICATION = 22
    CHANNEL_EXPEL_REQUEST = 23
    CHANNEL_EXPEL_INDICATION = 24
    SEND_DATA_REQUEST = 25
    SEND_DATA_INDICATION = 26
    UNIFORM_SEND_DATA_REQUEST = 27
    UNIFORM_SEND_DATA_INDICATION = 28
    TOKEN_GRAB_REQUEST = 29
    TOKEN_GRAB_CONFIRM = 30
    TOKEN_INHIBIT_REQUEST = 31
    TOKEN_INHIBIT_CONFIRM = 32
    TOKEN_GIVE_REQUEST = 33
    TOKEN_GIVE_INDICATION = 34
    TOKEN_GIVE_RESPONSE = 35
    TOKEN_GIVE_CONFIRM = 36
    TOKEN_PLEASE_REQUEST = 37
    TOKEN_PLEASE_INDICATION = 38
    TOKEN_RELEASE_REQUEST = 39
    TOKEN_RELEASE_CONFIRM = 40
    TOKEN_TEST_REQUEST = 41
    TOKEN_TEST_CONFIRM = 42


def choice_name(data: bytes) -> str:
    """Name of the DomainMCSPDU at the start of ``data`` (for error messages)."""
    if not data:
        return "nothing"
    return _enum_name(DomainPdu, data[0] >> 2)


@dataclass(frozen=True)
class ErectDomainRequest:
    sub_height: int = 0
    sub_interval: int = 0


@dataclass(frozen=True)
class AttachUserRequest:
    pass


@dataclass(frozen=True)
class AttachUserConfirm:
    result: int
    initiator: int | None  # the user channel id, present on success

    @property
    def result_name(self) -> str:
        return _enum_name(Result, self.result)


@dataclass(frozen=True)
class ChannelJoinRequest:
    initiator: int
    channel_id: int


@dataclass(frozen=True)
class ChannelJoinConfirm:
    result: int
    initiator: int
    requested: int
    channel_id: int | None

    @property
    def result_name(self) -> str:
        return _enum_name(Result, self.result)


@dataclass(frozen=True)
class SendData:
    """Send Data Request (client) or Indication (server); ``indication`` tells which."""

    indication: bool
    initiator: int
    channel_id: int
    data: bytes
    priority_segmentation: int = PRIORITY_SEGMENTATION


DomainMessage = (
    ErectDomainRequest
    | AttachUserRequest
    | AttachUserConfirm
    | ChannelJoinRequest
    | ChannelJoinConfirm
    | SendData
    | DisconnectProviderUltimatum
)


def _integer(value: int) -> bytes:
    """Unconstrained PER INTEGER as RDP sends small ones: length octet then big-endian value."""
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return bytes([len(body)]) + body


def _read_integer(buf: bytes, offset: int, what: str) -> tuple[int, int]:
    length, offset = per.read_length(buf, offset)
    if not 1 <= length <= 4:
        raise ProtocolError(f"{what}: INTEGER of {length} octets", offset)
    body, offset = per.read_octets(buf, offset, length, what)
    return int.from_bytes(body, "big"), offset


def _user_id(value: int) -> bytes:
    if not USER_ID_BASE <= value <= 0xFFFF:
        raise ProtocolError(f"user id {value} outside {USER_ID_BASE}..65535")
    return per.encode_u16(value, USER_ID_BASE)


# --- builders -------------------------------------------------------------------------------


def build_erect_domain_request(sub_height: int = 0, sub_interval: int = 0) -> bytes:
    return (
        bytes([DomainPdu.ERECT_DOMAIN_REQUEST << 2]) + _integer(sub_height) + _integer(sub_interval)
    )


def build_attach_user_request() -> bytes:
    return bytes([DomainPdu.ATTACH_USER_REQUEST << 2])


def build_attach_user_confirm(result: int, initiator: int | None) -> bytes:
    present = 0x02 if initiator is not None else 0
    out = bytes([(DomainPdu.ATTACH_USER_CONFIRM << 2) | present, result << 4])
    return out + (_user_id(initiator) if initiator is not None else b"")


def build_channel_join_request(initiator: int, channel_id: int) -> bytes:
    return (
        bytes([DomainPdu.CHANNEL_JOIN_REQUEST << 2])
        + _user_id(initiator)
        + per.encode_u16(channel_id)
    )


def build_channel_join_confirm(
    result: int, initiator: int, requested: int, channel_id: int | None
) -> bytes:
    present = 0x02 if channel_id is not None else 0
    out = bytes([(DomainPdu.CHANNEL_JOIN_CONFIRM << 2) | present, result << 4])
    out += _user_id(initiator) + per.encode_u16(requested)
    return out + (per.encode_u16(channel_id) if channel_id is not None else b"")


def build_send_data(
    initiator: int, channel_id: int, data: bytes, *, indication: bool = False
) -> bytes:
    """Send Data Request (client to server) or, with ``indication``, Indication."""
    choice = DomainPdu.SEND_DATA_INDICATION if indication else DomainPdu.SEND_DATA_REQUEST
    return (
        bytes([choice << 2])
        + _user_id(initiator)
        + per.encode_u16(channel_id)
        + bytes([PRIORITY_SEGMENTATION])
        + per.encode_length(len(data))
        + data
    )


# --- parser ---------------------------------------------------------------------------------


def _result(buf: bytes, offset: int) -> tuple[int, int]:
    value, offset = per.read_u8(buf, offset, "MCS result")
    return value >> 4, offset


def _done(buf: bytes, offset: int, what: str) -> None:
    if offset != len(buf):
        raise ProtocolError(f"{what}: {len(buf) - offset} bytes after the PDU", offset)


def parse_domain_pdu(data: bytes) -> DomainMessage:
    """One DomainMCSPDU (the payload of one X.224 Data TPDU); trailing bytes are an error
    except for Send Data, whose length says where its user data ends."""
    head, pos = per.read_u8(data, 0, "DomainMCSPDU choice")
    choice = head >> 2
    if choice == DomainPdu.ERECT_DOMAIN_REQUEST:
        height, pos = _read_integer(data, pos, "subHeight")
        interval, pos = _read_integer(data, pos, "subInterval")
        _done(data, pos, "Erect Domain Request")
        return ErectDomainRequest(height, interval)
    if choice == DomainPdu.ATTACH_USER_REQUEST:
        _done(data, pos, "Attach User Request")
        return AttachUserRequest()
    if choice == DomainPdu.ATTACH_USER_CONFIRM:
        result, pos = _result(data, pos)
        initiator: int | None = None
        if head & 0x02:
            initiator, pos = per.read_u16(data, pos, USER_ID_BASE, "Attach User initiator")
        _done(data, pos, "Attach User Confirm")
        return AttachUserConfirm(result, initiator)
    if choice == DomainPdu.CHANNEL_JOIN_REQUEST:
        initiator, pos = per.read_u16(data, pos, USER_ID_BASE, "Channel Join initiator")
        channel, pos = per.read_u16(data, pos, 0, "Channel Join channelId")
        _done(data, pos, "Channel Join Request")
        return ChannelJoinRequest(initiator, channel)
    if choice == DomainPdu.CHANNEL_JOIN_CONFIRM:
        result, pos = _result(data, pos)
        initiator, pos = per.read_u16(data, pos, USER_ID_BASE, "Channel Join initiator")
        requested, pos = per.read_u16(data, pos, 0, "Channel Join requested")
        joined: int | None = None
        if head & 0x02:
            joined, pos = per.read_u16(data, pos, 0, "Channel Join channelId")
        _done(data, pos, "Channel Join Confirm")
        return ChannelJoinConfirm(result, initiator, requested, joined)
    if choice in (DomainPdu.SEND_DATA_REQUEST, DomainPdu.SEND_DATA_INDICATION):
        initiator, pos = per.read_u16(data, pos, USER_ID_BASE, "Send Data initiator")
        channel, pos = per.read_u16(data, pos, 0, "Send Data channelId")
        flags, pos = per.read_u8(data, pos, "Send Data priority/segmentation")
        length, pos = per.read_length(data, pos)
        body, pos = per.read_octets(data, pos, length, "Send Data userData")
        _done(data, pos, "Send Data")
        return SendData(choice == DomainPdu.SEND_DATA_INDICATION, initiator, channel, body, flags)
    if choice == DomainPdu.DISCONNECT_PROVIDER_ULTIMATUM:
        return parse_disconnect_provider_ultimatum(data)
    raise ProtocolError(f"unexpected DomainMCSPDU {choice_name(data)}", 0)
