"""What a flow's first bytes can be: the start of RDP, or not (decided once, from a few bytes).

Starts recognised (issue 9, 12), besides a TPKT + X.224 Connection Request on any port
(:func:`rdprobe.protocol.reply.looks_like_request`): a TLS ClientHello on an RDP port when the
capture missed the start of the connection; a
SOCKS5 greeting and CONNECT (RFC 1928, RFC 1929 for the user/password step) whose target is an
RDP port or whose tunnelled bytes are a Connection Request. ISO-on-TCP (RFC 1006: X.224 over TPKT
for S7comm, MMS/ICCP and other ISO-TSAP users on port 102) uses the same Connection Request, so
:func:`iso_tsap_parameters` and :func:`iso_payload_name` tell it from RDP once its bytes are read.
Every function is total on any bytes: a verdict, or None for "show me more".
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from rdprobe.protocol.endpoint import RDP_PORT

__all__ = [
    "RDP_PORTS",
    "iso_payload_name",
    "iso_tsap_parameters",
    "looks_like_tls_hello",
    "socks5_reply",
    "socks5_request",
]

#: TCP/UDP ports where RDP is expected without a Connection Request to prove it.
RDP_PORTS = frozenset({RDP_PORT})
#: X.224 CR / CC parameter codes of ISO 8073 §13.3.4 (TPDU size, calling / called TSAP).
ISO_PARAMETERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0x85, 0x87, 0x88})


def looks_like_tls_hello(data: bytes, msg_type: int = 1) -> bool | None:
    """A TLS handshake record carrying ``msg_type`` (1 ClientHello) first (RFC 8446 §5.1)."""
    if not data:
        return None
    if data[0] != 0x16:
        return False
    if len(data) < 6:
        return None
    return data[1] == 3 and data[2] <= 4 and data[5] == msg_type


def iso_tsap_parameters(pdu: bytes) -> bool:
    """A whole TPKT + CR whose variable part is ISO 8073 parameters (TSAPs), not RDP's cookie,
    routing token or RDP_NEG_REQ."""
    if len(pdu) < 12:
        return False
    body = pdu[11 : 4 + 1 + pdu[4]]
    pos = 0
    while pos + 2 <= len(body):
        if body[pos] not in ISO_PARAMETERS:
            return False
        pos += 2 + body[pos + 1]
    return pos == len(body) and pos > 0


def iso_payload_name(user_data: bytes) -> str:
    """What an X.224 Data TPDU carries when it is not MCS (T.125 BER 0x7f65 / 0x7f66)."""
    if user_data[:1] == b"\x32":
        return "S7comm"
    if user_data[:1] == b"\x72":
        return "S7comm-plus"
    if user_data[:1] in (b"\x0d", b"\x0e", b"\x01", b"\x19"):
        return "ISO session (MMS / ICCP)"
    return "an ISO-TSAP application"


def _address(data: bytes, pos: int) -> tuple[str, int] | Literal[False] | None:
    """(host, end offset) of a SOCKS5 ATYP + address + port at ``pos``; None short, False bad."""
    if len(data) <= pos:
        return None
    atyp = data[pos]
    if atyp == 1:
        end = pos + 1 + 4
        host = str(ipaddress.IPv4Address(data[pos + 1 : end])) if len(data) >= end else ""
    elif atyp == 4:
        end = pos + 1 + 16
        host = str(ipaddress.IPv6Address(data[pos + 1 : end])) if len(data) >= end else ""
    elif atyp == 3:
        if len(data) <= pos + 1:
            return None
        end = pos + 2 + data[pos + 1]
        host = data[pos + 2 : end].decode("ascii", "replace")
    else:
        return False
    if len(data) < end + 2:
        return None
    return host, end


def socks5_request(data: bytes) -> tuple[int, str, int] | Literal[False] | None:
    """Client side of a SOCKS5 tunnel: (bytes used, target host, target port), None or False.

    Greeting (VER 5, NMETHODS, METHODS), optionally the RFC 1929 user/password step (its bytes
    are skipped, never kept), then CONNECT (VER 5, CMD 1, RSV 0, address, port).
    """
    if not data:
        return None
    if data[0] != 5:
        return False
    if len(data) < 2:
        return None
    if not 1 <= data[1] <= 16:
        return False
    pos = 2 + data[1]
    if len(data) < pos + 1:
        return None
    if data[pos] == 1 and 2 in data[2 : 2 + data[1]]:  # RFC 1929: VER 1, ULEN, UNAME, PLEN, ...
        if len(data) < pos + 2:
            return None
        plen_at = pos + 2 + data[pos + 1]
        if len(data) <= plen_at:
            return None
        pos = plen_at + 1 + data[plen_at]
    if len(data) < pos + 4:
        return None
    if data[pos] != 5 or data[pos + 1] != 1 or data[pos + 2] != 0:
        return False
    found = _address(data, pos + 3)
    if not isinstance(found, tuple):
        return found
    host, end = found
    return end + 2, host, (data[end] << 8) | data[end + 1]


def socks5_reply(data: bytes) -> tuple[int, int] | Literal[False] | None:
    """Server side: (bytes used, REP code) after method selection [+ auth status] + CONNECT reply."""
    if len(data) < 2:
        return None
    if data[0] != 5:
        return False
    pos = 2
    if data[1] == 2:  # user/password chosen: VER 1, STATUS
        if len(data) < 4:
            return None
        pos = 4
    elif data[1] == 0xFF:
        return 2, 0xFF  # no acceptable method: the tunnel is refused
    if len(data) < pos + 4:
        return None
    if data[pos] != 5:
        return False
    found = _address(data, pos + 3)
    if not isinstance(found, tuple):
        return found
    return found[1] + 2, data[pos + 1]
