"""The RDP negotiation's security protocol flags and the cookie rule (MS-RDPBCGR 2.2.1.1).

Apart from rdprobe.protocol.x224 (which re-exports both) so that the command line checks a
cookie and the negotiation matrix names its requests without loading the TPDU readers.
"""

from __future__ import annotations

import enum


class Protocol(enum.IntFlag):
    """requestedProtocols / selectedProtocol (2.2.1.1.1). RDP is the absence of every flag."""

    RDP = 0x00
    SSL = 0x01
    HYBRID = 0x02
    RDSTLS = 0x04
    HYBRID_EX = 0x08
    RDSAAD = 0x10


def valid_cookie(cookie: str) -> bool:
    """A routingToken/cookie line carries ASCII and ends at CR LF (MS-RDPBCGR 2.2.1.1)."""
    return cookie.isascii() and not any(c in cookie for c in "\r\n")
