"""Minimal, tolerant DER reader and the one ASN.1 writer (ITU-T X.690 §8, §10).

Enough for CredSSP TSRequest (MS-CSSP 2.2.1) and for walking an X.509 certificate to its public
key (RFC 5280 §4.1, :func:`subject_public_key_info`) where `cryptography` refuses the key's OID.
The reader accepts non-minimal long-form lengths (some servers send them) but not the BER
indefinite form; single-byte tags only. The writer (definite lengths, minimal INTEGERs) also
serves the BER of MCS (``rdprobe.protocol.ber`` re-uses it; only its reader differs).
"""

from __future__ import annotations

from rdprobe.protocol.errors import NeedMoreData, ProtocolError

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_SET = 0x31

MAX_LENGTH_OCTETS = 4


def context(number: int) -> int:
    """Tag byte of a constructed context-specific [number] (explicit tagging)."""
    if not 0 <= number <= 30:
        raise ValueError("context tag number out of range")
    return 0xA0 | number


def read_header(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """Return (tag, value_offset, value_length) of the TLV at *offset*.

    Raises NeedMoreData when the header itself is cut short, ProtocolError when malformed.
    """
    if offset >= len(data):
        raise NeedMoreData(2, offset)
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise ProtocolError("multi-byte DER tags are not supported", offset)
    if offset + 1 >= len(data):
        raise NeedMoreData(1, offset + 1)
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        return tag, pos, first
    count = first & 0x7F
    if count == 0:
        raise ProtocolError("indefinite length is not DER", offset + 1)
    if count > MAX_LENGTH_OCTETS:
        raise ProtocolError(f"length of {count} octets is too large", offset + 1)
    if pos + count > len(data):
        raise NeedMoreData(pos + count - len(data), len(data))
    length = int.from_bytes(data[pos : pos + count], "big")
    return tag, pos + count, length


def tlv_total_length(data: bytes, offset: int = 0) -> int:
    """Bytes the TLV at *offset* occupies (header + value); the header must be present."""
    _tag, value_offset, length = read_header(data, offset)
    return value_offset - offset + length


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Return (tag, value, next_offset); NeedMoreData when the value is truncated."""
    tag, value_offset, length = read_header(data, offset)
    end = value_offset + length
    if end > len(data):
        raise NeedMoreData(end - len(data), len(data))
    return tag, data[value_offset:end], end


def expect(data: bytes, tag: int, offset: int = 0) -> tuple[bytes, int]:
    """Read a TLV that must carry *tag*; return (value, next_offset)."""
    got, value, end = read_tlv(data, offset)
    if got != tag:
        raise ProtocolError(f"expected DER tag 0x{tag:02x}, found 0x{got:02x}", offset)
    return value, end


def children(data: bytes) -> list[tuple[int, bytes]]:
    """Split the contents of a constructed value into (tag, value) pairs.

    Inside an already complete container, a truncated child is malformed, so NeedMoreData
    is turned into a plain ProtocolError here.
    """
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        try:
            tag, value, offset = read_tlv(data, offset)
        except NeedMoreData as exc:
            raise ProtocolError("DER element overruns its container", exc.offset) from None
        out.append((tag, value))
    return out


def decode_integer(value: bytes) -> int:
    """Two's-complement INTEGER contents (X.690 §8.3)."""
    if not value:
        raise ProtocolError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


def decode_oid(value: bytes) -> str:
    """OBJECT IDENTIFIER contents to dotted text (X.690 §8.19)."""
    if not value:
        raise ProtocolError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    current = 0
    for byte in value:
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(current)
            current = 0
    if value[-1] & 0x80:
        raise ProtocolError("OBJECT IDENTIFIER ends inside an arc")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_length(length: int) -> bytes:
    """Definite length: short form below 128, else long form with the fewest octets."""
    if length < 0:
        raise ProtocolError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int | bytes, value: bytes) -> bytes:
    """One TLV; ``tag`` is one identifier octet or, for high tag numbers, the octets."""
    return (bytes([tag]) if isinstance(tag, int) else tag) + encode_length(len(value)) + value


def integer(number: int) -> bytes:
    """INTEGER in the fewest two's-complement octets (X.690 §8.3.2)."""
    size = ((number if number >= 0 else ~number).bit_length() + 8) // 8
    return tlv(TAG_INTEGER, number.to_bytes(size, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(TAG_OCTET_STRING, value)


def sequence(*parts: bytes) -> bytes:
    return tlv(TAG_SEQUENCE, b"".join(parts))


def explicit(number: int, inner: bytes) -> bytes:
    return tlv(context(number), inner)


# --- X.509 (RFC 5280 §4.1) -------------------------------------------------------------------


def subject_public_key_info(certificate: bytes) -> tuple[str, bytes]:
    """(algorithm OID, subjectPublicKey bits) of a DER certificate: Certificate ->
    TBSCertificate -> subjectPublicKeyInfo, skipping the optional [0] version."""
    cert_body, _ = expect(certificate, TAG_SEQUENCE)
    tbs, _ = expect(cert_body, TAG_SEQUENCE)
    fields = children(tbs)
    if fields and fields[0][0] == context(0):
        fields = fields[1:]
    if len(fields) < 6 or fields[5][0] != TAG_SEQUENCE:
        raise ProtocolError("TBSCertificate has no subjectPublicKeyInfo")
    spki = children(fields[5][1])
    if len(spki) < 2 or spki[0][0] != TAG_SEQUENCE or spki[1][0] != TAG_BIT_STRING:
        raise ProtocolError("no BIT STRING in SubjectPublicKeyInfo")
    oid = decode_oid(expect(spki[0][1], TAG_OID)[0])
    bits = spki[1][1]
    if len(bits) < 2:
        raise ProtocolError("empty subjectPublicKey")
    return oid, bits[1:]  # skip the unused-bits octet


def rsa_public_key(key: bytes) -> tuple[int, int]:
    """(modulus, publicExponent) of a PKCS#1 RSAPublicKey (RFC 8017 §A.1.1)."""
    body, _ = expect(key, TAG_SEQUENCE)
    parts = children(body)
    if len(parts) < 2 or parts[0][0] != TAG_INTEGER or parts[1][0] != TAG_INTEGER:
        raise ProtocolError("RSAPublicKey is not two INTEGERs")
    if not parts[0][1] or not parts[1][1]:
        raise ProtocolError("empty INTEGER in RSAPublicKey")
    # read unsigned, as clients do: a modulus missing its leading zero octet is still the modulus
    return int.from_bytes(parts[0][1], "big"), int.from_bytes(parts[1][1], "big")
