"""TPKT framing (RFC 1006 / T.123 section 8): version 3, reserved 0, big-endian length incl. header."""

from __future__ import annotations

import struct

from rdprobe.protocol.errors import NeedMoreData, ProtocolError

VERSION = 3
HEADER_LEN = 4
#: Largest PDU rdprobe accepts from a peer; a Connect Response with a certificate chain is ~5 KB.
MAX_PDU = 64 * 1024


def build(payload: bytes) -> bytes:
    """Wrap ``payload`` in a TPKT header."""
    length = HEADER_LEN + len(payload)
    if length > 0xFFFF:
        raise ProtocolError(f"TPKT payload of {len(payload)} bytes does not fit", 0)
    return struct.pack(">BBH", VERSION, 0, length) + payload


def frame_length(buf: bytes, limit: int = MAX_PDU) -> int:
    """Length of the TPKT PDU at the start of ``buf``.

    Raises NeedMoreData while the header is incomplete, ProtocolError when ``buf`` is not TPKT or
    announces a length outside 7..limit (7 = header plus the smallest X.224 TPDU).
    """
    if len(buf) < 1:
        raise NeedMoreData(HEADER_LEN, 0)
    if buf[0] != VERSION:
        raise ProtocolError(f"not TPKT: first byte 0x{buf[0]:02x}, expected 0x03", 0)
    if len(buf) < HEADER_LEN:
        raise NeedMoreData(HEADER_LEN - len(buf), len(buf))
    if buf[1] != 0:
        raise ProtocolError(f"not TPKT: reserved byte 0x{buf[1]:02x}, expected 0x00", 1)
    (length,) = struct.unpack_from(">H", buf, 2)
    if length < HEADER_LEN + 3:
        raise ProtocolError(f"TPKT length {length} is shorter than any X.224 TPDU", 2)
    if length > limit:
        raise ProtocolError(f"TPKT length {length} exceeds the {limit}-byte limit", 2)
    return length


def split(buf: bytes, limit: int = MAX_PDU) -> tuple[bytes, bytes]:
    """Split one whole TPKT PDU off ``buf``: (pdu, rest). NeedMoreData when incomplete."""
    length = frame_length(buf, limit)
    if len(buf) < length:
        raise NeedMoreData(length - len(buf), len(buf))
    return bytes(buf[:length]), bytes(buf[length:])


def payload(pdu: bytes) -> bytes:
    """The bytes inside one whole TPKT PDU (trailing bytes are an error)."""
    length = frame_length(pdu)
    if len(pdu) != length:
        raise ProtocolError(f"TPKT says {length} bytes, got {len(pdu)}", 2)
    return bytes(pdu[HEADER_LEN:])
