"""X.224 TPDUs and RDP negotiation (MS-RDPBCGR 2.2.1.1, 2.2.1.2, 3.3.5.3.1).

Connection Request (CR) with an optional cookie / routing token and RDP_NEG_REQ; Connection Confirm
(CC) with RDP_NEG_RSP, RDP_NEG_FAILURE or nothing (legacy servers); Data (DT) and Disconnect Request
(DR) TPDUs as servers send them instead of a confirm. All parsers take one whole TPKT PDU.
"""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass

from rdprobe.protocol import tpkt
from rdprobe.protocol.errors import ProtocolError

# The flags and the cookie rule are in x224_values (no dataclasses: the command line and the
# negotiation matrix name them without loading the TPDU readers); re-exported here.
from rdprobe.protocol.x224_values import Protocol as Protocol
from rdprobe.protocol.x224_values import valid_cookie as valid_cookie

# TPDU codes (X.224 13.x), high nibble of the second byte after LI.
TPDU_CR = 0xE0
TPDU_CC = 0xD0
TPDU_DR = 0x80
TPDU_DT = 0xF0
TPDU_ER = 0x70

NEG_LENGTH = 8
CORRELATION_LENGTH = 36
#: src-ref Windows puts in every Connection Confirm (3.3.5.3.1); xrdp and FreeRDP send 0.
WINDOWS_SRC_REF = 0x1234


class NegRequestFlag(enum.IntFlag):
    RESTRICTED_ADMIN_MODE_REQUIRED = 0x01
    REDIRECTED_AUTHENTICATION_MODE_REQUIRED = 0x02
    CORRELATION_INFO_PRESENT = 0x08


class NegResponseFlag(enum.IntFlag):
    EXTENDED_CLIENT_DATA_SUPPORTED = 0x01
    DYNVC_GFX_PROTOCOL_SUPPORTED = 0x02
    NEGRSP_FLAG_RESERVED = 0x04
    RESTRICTED_ADMIN_MODE_SUPPORTED = 0x08
    REDIRECTED_AUTHENTICATION_MODE_SUPPORTED = 0x10


class FailureCode(enum.IntEnum):
    SSL_REQUIRED_BY_SERVER = 1
    SSL_NOT_ALLOWED_BY_SERVER = 2
    SSL_CERT_NOT_ON_SERVER = 3
    INCONSISTENT_FLAGS = 4
    HYBRID_REQUIRED_BY_SERVER = 5
    SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER = 6


class NegType(enum.IntEnum):
    REQUEST = 0x01
    RESPONSE = 0x02
    FAILURE = 0x03
    CORRELATION_INFO = 0x06


@functools.lru_cache(maxsize=256)
def protocol_name(value: int) -> str:
    """'RDP' for 0, else the flag names joined by '|' (unknown bits in hex). Cached: a sweep
    names the same few values for every attempt it describes, and an enum walk costs ~20 us."""
    if value == 0:
        return "RDP"
    names = [p.name for p in Protocol if p and value & p and p.name]
    unknown = value & ~sum(p for p in Protocol)
    if unknown:
        names.append(f"0x{unknown:x}")
    return "|".join(names)


def flag_names(flag_type: type[enum.IntFlag], value: int) -> list[str]:
    """Names of the set bits of ``value``; unknown bits as hex (a new list: the caller's)."""
    return list(_flag_names(flag_type, value))


@functools.lru_cache(maxsize=256)
def _flag_names(flag_type: type[enum.IntFlag], value: int) -> tuple[str, ...]:
    names = [f.name for f in flag_type if f and value & f and f.name]
    unknown = value & ~sum(f for f in flag_type)
    if unknown:
        names.append(f"0x{unknown:02x}")
    return tuple(names)


@dataclass(frozen=True)
class NegotiationRequest:
    requested: int
    flags: int = 0


@dataclass(frozen=True)
class NegotiationResponse:
    selected: int
    flags: int = 0

    @property
    def flag_names(self) -> list[str]:
        return flag_names(NegResponseFlag, self.flags)


@dataclass(frozen=True)
class NegotiationFailure:
    code: int
    flags: int = 0

    @property
    def code_name(self) -> str:
        try:
            return FailureCode(self.code).name
        except ValueError:
            return f"UNKNOWN_FAILURE_{self.code}"


@dataclass(frozen=True)
class ConnectionRequest:
    cookie: str | None = None
    routing_token: bytes | None = None
    negotiation: NegotiationRequest | None = None
    correlation_id: bytes | None = None


@dataclass(frozen=True)
class ConnectionConfirm:
    dst_ref: int
    src_ref: int
    class_option: int
    negotiation: NegotiationResponse | NegotiationFailure | None
    #: bytes inside the TPDU after the known fields (a non-conforming server)
    extra: bytes = b""

    @property
    def legacy(self) -> bool:
        """No negotiation data at all: a pre-2003-SP1 server, or a client that sent no NEG_REQ."""
        return self.negotiation is None


@dataclass(frozen=True)
class DataTpdu:
    user_data: bytes


@dataclass(frozen=True)
class DisconnectRequest:
    dst_ref: int
    src_ref: int
    reason: int


ServerTpdu = ConnectionConfirm | DataTpdu | DisconnectRequest

# -- Connection Request ---------------------------------------------------------------------------


def build_request(
    *,
    cookie: str | None = None,
    routing_token: bytes | None = None,
    requested: int | None = None,
    flags: int = 0,
    correlation_id: bytes | None = None,
) -> bytes:
    """A whole TPKT + X.224 CR. ``requested=None`` sends no RDP_NEG_REQ (pre-2003-SP1 client)."""
    body = b""
    if routing_token is not None:
        body += routing_token
    elif cookie is not None:
        if not valid_cookie(cookie):
            raise ProtocolError("cookie must be ASCII without CR/LF", 0)
        body += b"Cookie: mstshash=" + cookie.encode("ascii") + b"\r\n"
    if requested is not None:
        if correlation_id is not None:
            flags |= NegRequestFlag.CORRELATION_INFO_PRESENT
        body += struct.pack("<BBHI", NegType.REQUEST, flags, NEG_LENGTH, requested)
        if correlation_id is not None:
            if len(correlation_id) != 16:
                raise ProtocolError("correlation id must be 16 bytes", 0)
            body += struct.pack("<BBH", NegType.CORRELATION_INFO, 0, CORRELATION_LENGTH)
            body += correlation_id + bytes(16)
    header = struct.pack(">BBHHB", 6 + len(body), TPDU_CR, 0, 0, 0)
    return tpkt.build(header + body)


def parse_request(pdu: bytes) -> ConnectionRequest:
    """Parse a whole TPKT + X.224 CR (the pcap reader and the emulator read clients with this)."""
    code, tpdu = _tpdu(pdu)
    if code != TPDU_CR:
        raise ProtocolError(f"expected a Connection Request (0xe0), got 0x{code:02x}", 5)
    if len(tpdu) < 7:
        raise ProtocolError("Connection Request shorter than its fixed part", 4)
    body = tpdu[7:]
    base = 4 + 7
    cookie = token = None
    if body and body[0] != NegType.REQUEST:  # a cookie or routing token, CR LF terminated
        end = body.find(b"\r\n")
        if end < 0:
            raise ProtocolError("cookie or routing token without CR LF terminator", base)
        line = body[: end + 2]
        body = body[end + 2 :]
        base += len(line)
        if line.startswith(b"Cookie: mstshash="):
            cookie = line[len(b"Cookie: mstshash=") : -2].decode("latin-1")
        else:
            token = line
    negotiation = correlation = None
    if body:
        neg_type, flags, _length, requested = _neg_block(body, base)
        if neg_type != NegType.REQUEST:
            raise ProtocolError(f"expected RDP_NEG_REQ (type 1), got type {neg_type}", base)
        negotiation = NegotiationRequest(requested=requested, flags=flags)
        body = body[NEG_LENGTH:]
        base += NEG_LENGTH
        if body:
            if len(body) < CORRELATION_LENGTH or body[0] != NegType.CORRELATION_INFO:
                raise ProtocolError("malformed RDP_NEG_CORRELATION_INFO", base)
            correlation = bytes(body[4:20])
            body = body[CORRELATION_LENGTH:]
            if body:
                raise ProtocolError(f"{len(body)} unexpected bytes after the CR", base + 36)
    return ConnectionRequest(
        cookie=cookie, routing_token=token, negotiation=negotiation, correlation_id=correlation
    )


# -- Connection Confirm and other server TPDUs ----------------------------------------------------


def build_confirm(
    negotiation: NegotiationResponse | NegotiationFailure | None,
    *,
    src_ref: int = WINDOWS_SRC_REF,
) -> bytes:
    """A whole TPKT + X.224 CC as a server sends it."""
    body = b""
    if isinstance(negotiation, NegotiationResponse):
        body = struct.pack(
            "<BBHI", NegType.RESPONSE, negotiation.flags, NEG_LENGTH, negotiation.selected
        )
    elif isinstance(negotiation, NegotiationFailure):
        body = struct.pack(
            "<BBHI", NegType.FAILURE, negotiation.flags, NEG_LENGTH, negotiation.code
        )
    header = struct.pack(">BBHHB", 6 + len(body), TPDU_CC, 0, src_ref, 0)
    return tpkt.build(header + body)


def parse_server_tpdu(pdu: bytes) -> ServerTpdu:
    """Parse what a server sends after a CR: a CC, or a DT / DR it sends instead."""
    code, tpdu = _tpdu(pdu)
    if code == TPDU_CC:
        return _parse_confirm(tpdu)
    if code == TPDU_DT:
        if len(tpdu) < 3:
            raise ProtocolError("Data TPDU shorter than its header", 4)
        return DataTpdu(user_data=bytes(tpdu[3:]))
    if code == TPDU_DR:
        if len(tpdu) < 7:
            raise ProtocolError("Disconnect Request shorter than its fixed part", 4)
        dst, src, reason = struct.unpack_from(">HHB", tpdu, 2)
        return DisconnectRequest(dst_ref=dst, src_ref=src, reason=reason)
    raise ProtocolError(f"unexpected X.224 TPDU code 0x{code:02x}", 5)


def parse_confirm(pdu: bytes) -> ConnectionConfirm:
    """Parse a whole TPKT + X.224 CC; any other TPDU is a ProtocolError."""
    tpdu = parse_server_tpdu(pdu)
    if not isinstance(tpdu, ConnectionConfirm):
        raise ProtocolError(f"expected a Connection Confirm, got {type(tpdu).__name__}", 5)
    return tpdu


def _parse_confirm(tpdu: bytes) -> ConnectionConfirm:
    if len(tpdu) < 7:
        raise ProtocolError("Connection Confirm shorter than its fixed part", 4)
    dst, src, cls = struct.unpack_from(">HHB", tpdu, 2)
    body = tpdu[7:]
    negotiation: NegotiationResponse | NegotiationFailure | None = None
    if len(body) >= NEG_LENGTH and body[0] in (NegType.RESPONSE, NegType.FAILURE):
        neg_type, flags, _length, value = _neg_block(body, 11)
        if neg_type == NegType.RESPONSE:
            negotiation = NegotiationResponse(selected=value, flags=flags)
        else:
            negotiation = NegotiationFailure(code=value, flags=flags)
        body = body[NEG_LENGTH:]
    elif body and body[0] in (NegType.RESPONSE, NegType.FAILURE):
        raise ProtocolError("truncated negotiation data in the Connection Confirm", 11)
    return ConnectionConfirm(
        dst_ref=dst, src_ref=src, class_option=cls, negotiation=negotiation, extra=bytes(body)
    )


# -- Data TPDU ------------------------------------------------------------------------------------


def build_data(user_data: bytes) -> bytes:
    """TPKT + X.224 DT (EOT) around ``user_data`` (an MCS PDU)."""
    return tpkt.build(bytes((2, TPDU_DT, 0x80)) + user_data)


def parse_data(pdu: bytes) -> bytes:
    """User data of a whole TPKT + X.224 DT PDU."""
    tpdu = parse_server_tpdu(pdu)
    if not isinstance(tpdu, DataTpdu):
        raise ProtocolError(f"expected an X.224 Data TPDU, got {type(tpdu).__name__}", 5)
    return tpdu.user_data


# -- helpers --------------------------------------------------------------------------------------


def _tpdu(pdu: bytes) -> tuple[int, bytes]:
    """(TPDU code, TPDU bytes from LI on) of one whole TPKT PDU, LI checked against the length."""
    body = tpkt.payload(pdu)
    if len(body) < 2:
        raise ProtocolError("X.224 TPDU shorter than 2 bytes", 4)
    li = body[0]
    if li + 1 > len(body):
        raise ProtocolError(f"X.224 length indicator {li} exceeds the {len(body)}-byte TPDU", 4)
    code = body[1] & 0xF0
    if code != TPDU_DT and li + 1 != len(body):
        raise ProtocolError(f"X.224 length indicator {li} but TPDU holds {len(body) - 1}", 4)
    return code, body


def _neg_block(body: bytes, offset: int) -> tuple[int, int, int, int]:
    if len(body) < NEG_LENGTH:
        raise ProtocolError("negotiation block shorter than 8 bytes", offset)
    neg_type, flags, length, value = struct.unpack_from("<BBHI", body, 0)
    if length != NEG_LENGTH:
        raise ProtocolError(f"negotiation block length {length}, expected 8", offset + 2)
    return neg_type, flags, length, value
