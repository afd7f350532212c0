"""The aligned-PER subset the T.124 GCC Conference Create PDUs use (X.691, MS-RDPBCGR 2.2.1.3/4).

Readers take ``(buf, offset)`` and return ``(value, new_offset)``; they raise only ProtocolError.
"""

from __future__ import annotations

from rdprobe.protocol.errors import ProtocolError


def _need(buf: bytes, offset: int, count: int, what: str) -> None:
    if offset < 0 or offset + count > len(buf):
        raise ProtocolError(f"truncated {what}: need {count} bytes", offset)


def encode_length(length: int) -> bytes:
    """Unconstrained length determinant: 1 octet below 128, else 2 octets with 0x80 (X.691 10.9)."""
    if length < 0 or length > 0x3FFF:
        raise ProtocolError(f"PER length {length} out of range (fragmentation unsupported)")
    if length < 0x80:
        return bytes([length])
    return bytes([0x80 | (length >> 8), length & 0xFF])


def read_length(buf: bytes, offset: int) -> tuple[int, int]:
    """Length determinant; the 2-octet form is accepted even for small values (Windows uses it)."""
    _need(buf, offset, 1, "PER length")
    first = buf[offset]
    if not first & 0x80:
        return first, offset + 1
    if first & 0x40:
        raise ProtocolError("fragmented PER length not supported", offset)
    _need(buf, offset, 2, "PER length")
    return ((first & 0x3F) << 8) | buf[offset + 1], offset + 2


def read_u8(buf: bytes, offset: int, what: str = "PER octet") -> tuple[int, int]:
    _need(buf, offset, 1, what)
    return buf[offset], offset + 1


def read_u16(
    buf: bytes, offset: int, minimum: int = 0, what: str = "PER integer"
) -> tuple[int, int]:
    """Constrained 16-bit integer stored as value - minimum, big-endian."""
    _need(buf, offset, 2, what)
    return int.from_bytes(buf[offset : offset + 2], "big") + minimum, offset + 2


def encode_u16(value: int, minimum: int = 0) -> bytes:
    return (value - minimum).to_bytes(2, "big")


def read_octets(buf: bytes, offset: int, count: int, what: str) -> tuple[bytes, int]:
    _need(buf, offset, count, what)
    return bytes(buf[offset : offset + count]), offset + count


def encode_object_identifier(oid: tuple[int, ...]) -> bytes:
    """OBJECT IDENTIFIER contents with a 1-octet length (T.124 keys; first two arcs combined)."""
    body = bytearray([oid[0] * 40 + oid[1]])
    for arc in oid[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return bytes([len(body)]) + bytes(body)


def read_object_identifier(buf: bytes, offset: int) -> tuple[tuple[int, ...], int]:
    length, offset = read_u8(buf, offset, "OBJECT IDENTIFIER length")
    body, end = read_octets(buf, offset, length, "OBJECT IDENTIFIER")
    if not body:
        raise ProtocolError("empty OBJECT IDENTIFIER", offset)
    arcs = [body[0] // 40, body[0] % 40]
    value = 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return tuple(arcs), end
