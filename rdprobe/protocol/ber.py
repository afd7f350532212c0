"""The BER subset T.125 MCS Connect-Initial / Connect-Response use (X.690 section 8).

Tags (with the high-tag-number form MCS needs for [APPLICATION 101]), definite lengths, INTEGER,
ENUMERATED, BOOLEAN and OCTET STRING. Readers take ``(buf, offset)`` and return
``(value, new_offset)``; they raise only ProtocolError. Lengths, TLVs, INTEGERs and OCTET
STRINGs are written by ``rdprobe.protocol.der`` (the same definite-length encoding).
"""

from __future__ import annotations

from rdprobe.protocol import der
from rdprobe.protocol.errors import ProtocolError

CLASS_UNIVERSAL = 0x00
CLASS_APPLICATION = 0x40
CONSTRUCTED = 0x20

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_OCTET_STRING = 0x04
TAG_ENUMERATED = 0x0A
TAG_SEQUENCE = 0x30  # universal 16, constructed


def _need(buf: bytes, offset: int, count: int, what: str) -> None:
    if offset < 0 or offset + count > len(buf):
        raise ProtocolError(f"truncated {what}: need {count} bytes", offset)


# --- encoding -------------------------------------------------------------------------------


#: The definite-length writer is DER's (one implementation); MCS needs nothing BER-only to write
#: but the high tag numbers of [APPLICATION 101] below.
encode_length = der.encode_length
encode_tlv = der.tlv
encode_integer = der.integer
encode_octet_string = der.octet_string


def encode_application_tag(number: int, constructed: bool = True) -> bytes:
    """[APPLICATION n] identifier octets; n > 30 uses the high-tag-number form (X.690 8.1.2.4)."""
    first = CLASS_APPLICATION | (CONSTRUCTED if constructed else 0)
    if number < 31:
        return bytes([first | number])
    digits = []
    while True:
        digits.append(number & 0x7F)
        number >>= 7
        if not number:
            break
    digits.reverse()
    tail = bytes([d | 0x80 for d in digits[:-1]] + [digits[-1]])
    return bytes([first | 0x1F]) + tail


def encode_enumerated(value: int) -> bytes:
    size = max(1, value.bit_length() // 8 + 1)
    return encode_tlv(TAG_ENUMERATED, value.to_bytes(size, "big", signed=True))


def encode_boolean(value: bool) -> bytes:
    return encode_tlv(TAG_BOOLEAN, b"\xff" if value else b"\x00")


def encode_sequence(content: bytes) -> bytes:
    return der.sequence(content)


# --- decoding -------------------------------------------------------------------------------


def read_tag(buf: bytes, offset: int) -> tuple[int, int, bool, int]:
    """Identifier octets -> (class bits, tag number, constructed, new offset)."""
    _need(buf, offset, 1, "BER tag")
    first = buf[offset]
    offset += 1
    number = first & 0x1F
    if number == 0x1F:
        number = 0
        for count in range(4):
            _need(buf, offset, 1, "BER long tag")
            byte = buf[offset]
            offset += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if count == 3:
                raise ProtocolError("BER tag number too long", offset)
    return first & 0xC0, number, bool(first & CONSTRUCTED), offset


def read_length(buf: bytes, offset: int) -> tuple[int, int]:
    """Definite length (short or long form, up to 4 octets) -> (length, new offset)."""
    _need(buf, offset, 1, "BER length")
    first = buf[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if count == 0:
        raise ProtocolError("indefinite BER length not allowed here", offset - 1)
    if count > 4:
        raise ProtocolError(f"BER length of {count} octets", offset - 1)
    _need(buf, offset, count, "BER long length")
    return int.from_bytes(buf[offset : offset + count], "big"), offset + count


def read_expected(
    buf: bytes, offset: int, tag_class: int, number: int, constructed: bool, what: str
) -> tuple[int, int]:
    """Read a header that must carry the given tag -> (content start, content end)."""
    start = offset
    got_class, got_number, got_constructed, offset = read_tag(buf, offset)
    if (got_class, got_number, got_constructed) != (tag_class, number, constructed):
        raise ProtocolError(f"expected {what}, found tag 0x{buf[start]:02x}", start)
    length, offset = read_length(buf, offset)
    _need(buf, offset, length, what)
    return offset, offset + length


def _read_universal(buf: bytes, offset: int, number: int, what: str) -> tuple[bytes, int]:
    start, end = read_expected(buf, offset, CLASS_UNIVERSAL, number, False, what)
    return bytes(buf[start:end]), end


def read_integer(buf: bytes, offset: int, signed: bool = False) -> tuple[int, int]:
    """INTEGER; unsigned by default: MCS peers send 64535 as ``02 02 fc 17`` (MS-RDPBCGR 4.1.3)."""
    content, end = _read_universal(buf, offset, TAG_INTEGER, "INTEGER")
    if not 1 <= len(content) <= 8:
        raise ProtocolError(f"INTEGER of {len(content)} octets", offset)
    return int.from_bytes(content, "big", signed=signed), end


def read_enumerated(buf: bytes, offset: int) -> tuple[int, int]:
    content, end = _read_universal(buf, offset, TAG_ENUMERATED, "ENUMERATED")
    if not 1 <= len(content) <= 4:
        raise ProtocolError(f"ENUMERATED of {len(content)} octets", offset)
    return int.from_bytes(content, "big"), end


def read_boolean(buf: bytes, offset: int) -> tuple[bool, int]:
    content, end = _read_universal(buf, offset, TAG_BOOLEAN, "BOOLEAN")
    if len(content) != 1:
        raise ProtocolError(f"BOOLEAN of {len(content)} octets", offset)
    return content != b"\x00", end


def read_octet_string(buf: bytes, offset: int) -> tuple[bytes, int]:
    return _read_universal(buf, offset, TAG_OCTET_STRING, "OCTET STRING")


def read_sequence(buf: bytes, offset: int) -> tuple[int, int]:
    """SEQUENCE header -> (content start, content end)."""
    return read_expected(buf, offset, CLASS_UNIVERSAL, 16, True, "SEQUENCE")


def read_any(buf: bytes, offset: int) -> tuple[int, int, bool, int, int]:
    """Any TLV -> (class bits, tag number, constructed, content start, content end)."""
    tag_class, number, constructed, pos = read_tag(buf, offset)
    length, pos = read_length(buf, pos)
    _need(buf, pos, length, "BER value")
    return tag_class, number, constructed, pos, pos + length
