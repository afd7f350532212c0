"""One TCP connection of a capture as the flow table keeps it: roles, timing, endings.

Direction 0 (:data:`CLIENT`) is client-to-server, 1 (:data:`SERVER`) server-to-client; see
:mod:`rdprobe.capture.flows` for how roles are assigned and when a flow ends.
"""

from __future__ import annotations

from rdprobe.capture.linklayer import format_address
from rdprobe.capture.reassembly import Reassembler

CLIENT = 0
SERVER = 1
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10

#: How a flow ended (:attr:`Flow.end_reason`).
END_FIN = "fin"
END_RST = "rst"
END_IDLE = "idle-timeout"  # no packet for idle_timeout seconds during the capture
END_CAPTURE = "capture-end"  # still open (idle) when the capture ended
END_REUSED = "port-reused"  # a SYN with a new sequence number opened another connection
#: Flow-key hashes kept as "seen, not interesting" (2 per flow, ~50 bytes each); then cleared.
MAX_SEEN = 1 << 17


class Flow:
    """One TCP connection seen in the capture. Timestamps are capture seconds (None = not seen)."""

    __slots__ = (
        "ack_ts",
        "asked",
        "bytes",
        "client",
        "client_port",
        "end_reason",
        "end_ts",
        "ended_by",
        "fin_ts",
        "first_ts",
        "interest",
        "isn",
        "keys",
        "last_ts",
        "packets",
        "role_basis",
        "rst_ts",
        "server",
        "server_port",
        "streams",
        "syn_count",
        "syn_ts",
        "synack_ts",
        "user",
    )

    def __init__(self, client: bytes, cport: int, server: bytes, sport: int, basis: str, ts: float):
        self.client, self.client_port, self.server, self.server_port = client, cport, server, sport
        self.role_basis = basis  # "syn", "synack" or "port"
        self.first_ts = self.last_ts = ts
        self.syn_ts: float | None = None
        self.synack_ts: float | None = None
        self.ack_ts: float | None = None  # client's ACK completing the three-way handshake
        self.syn_count = 0  # SYNs sent by the client (retransmissions > 1)
        self.isn: list[int | None] = [None, None]
        self.fin_ts: list[float | None] = [None, None]
        self.rst_ts: list[float | None] = [None, None]
        self.packets = [0, 0]
        self.bytes = [0, 0]  # TCP payload bytes per direction (as promised by the IP length)
        self.streams: tuple[Reassembler, Reassembler] | None = None
        self.interest: bool | None = None
        self.end_reason: str | None = None
        self.ended_by: int | None = None  # CLIENT or SERVER for fin / rst
        self.end_ts: float | None = None
        self.user: object = None  # free slot for the upper layer's per-flow state
        self.asked = [0, 0]  # queued bytes when the handler was last asked, per direction
        #: the table's keys for this flow (client-to-server, server-to-client), set by the table
        self.keys: tuple[bytes, bytes] = (b"", b"")

    @property
    def client_address(self) -> str:
        return format_address(self.client)

    @property
    def server_address(self) -> str:
        return format_address(self.server)

    @property
    def handshake_rtt(self) -> float | None:
        """SYN to the client's ACK of the SYN+ACK: one round trip, wherever the capture was taken."""
        if self.syn_ts is None or self.ack_ts is None:
            return None
        return self.ack_ts - self.syn_ts

    @property
    def handshake(self) -> str:
        """The TCP control packets seen, in order of kind: "SYN, SYN+ACK, ACK, RST(client)"."""
        parts = [name for name, ts in (("SYN", self.syn_ts), ("SYN+ACK", self.synack_ts),
                                       ("ACK", self.ack_ts)) if ts is not None]  # fmt: skip
        for kind, stamps in (("FIN", self.fin_ts), ("RST", self.rst_ts)):
            parts += [f"{kind}({who})" for who, ts in zip(("client", "server"), stamps,
                                                           strict=True) if ts is not None]  # fmt: skip
        return ", ".join(parts)

    @property
    def closed(self) -> bool:
        """A RST was seen, or a FIN in both directions."""
        return self.rst_ts != [None, None] or None not in self.fin_ts

    def __repr__(self) -> str:
        return (
            f"Flow({self.client_address}:{self.client_port} -> "
            f"{self.server_address}:{self.server_port}, {self.role_basis}, end={self.end_reason})"
        )
