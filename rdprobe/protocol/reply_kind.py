"""How the server answered a Connection Request: the kinds rdprobe.protocol.reply tells apart.

Its own module (no parser imports) because every observation names one: a refused port is
observed and judged without loading the TPKT, X.224 and TLS readers.
"""

from __future__ import annotations

import enum


class ReplyKind(enum.StrEnum):
    """How the server answered a Connection Request on an accepted connection."""

    TPDU = "tpdu"  #: a whole X.224 TPDU that parsed (confirm, data or disconnect)
    RESET = "reset"  #: RST before any byte
    CLOSED = "closed"  #: FIN before any byte
    SILENT = "silent"  #: nothing before the deadline
    NOT_TPKT = "not_tpkt"  #: bytes that are not TPKT (another service)
    TRUNCATED = "truncated"  #: a TPKT PDU cut short by a close or reset
    SLOW = "slow"  #: a TPKT PDU still incomplete at the deadline (a drip)
    OVERSIZED = "oversized"  #: a TPKT header announcing an impossible length
    MALFORMED = "malformed"  #: a whole TPKT PDU that is not valid X.224
