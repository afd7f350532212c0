"""The X.224 negotiation matrix: the Connection Requests `check` sends, one connection each.

Its own module (no asyncio) so the first connect (rdprobe.live.first_connect) can label a refused
port's attempt without loading the asyncio prober (rdprobe.live.negotiate).
"""

from __future__ import annotations

from dataclasses import dataclass

from rdprobe.protocol.x224_values import Protocol as P


@dataclass(frozen=True)
class Request:
    """One row of the negotiation matrix."""

    label: str
    requested: int | None  #: None: no RDP_NEG_REQ at all, like a pre-2003-SP1 client


#: What mstsc sends today; asked first, alone, because it answers most questions.
PRIMARY = Request("SSL|HYBRID|HYBRID_EX", int(P.SSL | P.HYBRID | P.HYBRID_EX))
MATRIX: tuple[Request, ...] = (
    PRIMARY,
    Request("RDP", int(P.RDP)),
    Request("SSL", int(P.SSL)),
    Request("SSL|HYBRID", int(P.SSL | P.HYBRID)),
    Request("RDSTLS", int(P.RDSTLS)),
    Request("no negotiation", None),
)
#: The label of depth tcp's one attempt (connect and close, nothing sent).
TCP_ONLY = Request("TCP connect", None)
