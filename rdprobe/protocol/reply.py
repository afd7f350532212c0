"""What kind of reply is this? The first bytes of each side of an RDP connection, read sans-IO.

One reader for the live prober and the pcap reader alike (MS-RDPBCGR 1.3.1.1): the server's answer
to an X.224 Connection Request (2.2.1.2) is a whole TPDU, a TPKT header announcing an impossible
length, bytes that are not TPKT at all (another service's banner), or a TPKT PDU that is no X.224;
the client's first bytes are a Connection Request (2.2.1.1) or not; a client's TLS ClientHello
(RFC 8446 §4.1.2) names the server it wants (RFC 6066 §3).
"""

from __future__ import annotations

from dataclasses import dataclass

from rdprobe.protocol import tlsrec, tpkt, x224
from rdprobe.protocol.errors import NeedMoreData, ProtocolError
from rdprobe.protocol.reply_kind import ReplyKind as ReplyKind

#: No Connection Confirm (or what a server sends instead) is anywhere near this long.
CONFIRM_LIMIT = 1024
#: How much of a non-RDP reply to keep for fingerprinting and evidence.
BANNER_LIMIT = 4096


@dataclass(frozen=True)
class Sniffed:
    """What the bytes so far say. ``kind`` None: a valid prefix, ``needed`` more bytes to read.
    TPDU: ``tpdu`` parsed from the first ``length`` bytes. NOT_TPKT: another service (collect up
    to BANNER_LIMIT for its name). OVERSIZED / MALFORMED: ``error`` says why."""

    kind: ReplyKind | None
    needed: int = 0
    length: int = 0
    tpdu: x224.ServerTpdu | None = None
    error: str | None = None


def sniff_reply(buf: bytes) -> Sniffed:
    """Classify the first bytes a server sent after a Connection Request. Total: never raises."""
    if buf and buf[0] != tpkt.VERSION:
        return Sniffed(ReplyKind.NOT_TPKT)
    try:
        length = tpkt.frame_length(buf, CONFIRM_LIMIT)
    except NeedMoreData as need:
        return Sniffed(None, needed=need.needed)
    except ProtocolError as exc:
        if len(buf) >= 4 and buf[1] == 0 and int.from_bytes(buf[2:4], "big") > CONFIRM_LIMIT:
            return Sniffed(ReplyKind.OVERSIZED, error=exc.reason)
        if len(buf) >= 2 and buf[1] != 0:
            return Sniffed(ReplyKind.NOT_TPKT)
        return Sniffed(ReplyKind.MALFORMED, error=exc.reason)
    if len(buf) < length:
        return Sniffed(None, needed=length - len(buf))
    try:
        tpdu = x224.parse_server_tpdu(bytes(buf[:length]))
    except ProtocolError as exc:
        return Sniffed(ReplyKind.MALFORMED, length=length, error=exc.reason)
    return Sniffed(ReplyKind.TPDU, length=length, tpdu=tpdu)


def looks_like_request(data: bytes) -> bool | None:
    """TPKT + X.224 CR at the start of ``data``: True, False, or None (too short to tell)."""
    if not data:
        return None
    if data[0] != tpkt.VERSION:
        return False
    if len(data) < 6:
        return None
    length = (data[2] << 8) | data[3]
    return data[1] == 0 and length >= 11 and data[4] >= 6 and data[5] & 0xF0 == x224.TPDU_CR


def client_hello_record(buf: bytes) -> bytes | None:
    """The handshake bytes of the first TLS record in ``buf`` once it is whole (or longer than a
    record may be: then what there is), None while incomplete."""
    if len(buf) < 5:
        return None
    size = (buf[3] << 8) | buf[4]
    if len(buf) < 5 + size and size <= tlsrec.MAX_FRAGMENT:
        return None
    return bytes(buf[5 : 5 + size])


def client_hello_sni(record: bytes) -> str | None:
    """The server_name (RFC 6066 §3) of a ClientHello handshake message, or None."""
    if len(record) < 4 or record[0] != tlsrec.HandshakeType.client_hello:
        return None
    pos = 4 + 2 + 32  # handshake header, client_version, random
    for size_len in (1, 2, 1):  # session_id, cipher_suites, compression_methods
        if pos + size_len > len(record):
            return None
        pos += size_len + int.from_bytes(record[pos : pos + size_len], "big")
    if pos + 2 > len(record):
        return None
    end = min(len(record), pos + 2 + int.from_bytes(record[pos : pos + 2], "big"))
    pos += 2
    while pos + 4 <= end:
        ext_type = int.from_bytes(record[pos : pos + 2], "big")
        size = int.from_bytes(record[pos + 2 : pos + 4], "big")
        body = record[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if ext_type == tlsrec.EXT_SERVER_NAME and len(body) >= 5 and body[2] == 0:
            name_len = int.from_bytes(body[3:5], "big")
            name = body[5 : 5 + name_len]
            return name.decode("ascii", "replace") if len(name) == name_len else None
    return None
