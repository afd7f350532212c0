"""RDP over UDP in a capture (MS-RDPEUDP): the SYN / SYN+ACK handshake and the datagrams after it.

A flow starts at a client SYN (snSourceAck -1, MTUs 1132..1232; 2.2.2.5, 3.1.5.1.1), at a SYN+ACK
whose SYN the capture missed, or, when the capture starts mid-flow, at a datagram to or from an RDP
port that reads as an RDPUDP_FEC_HEADER with ACK set (2.2.2.1). Every later datagram of the flow,
either way, counts in its packets, bytes and duration (to the last datagram). A flow idle for
``idle_timeout`` capture seconds is emitted and forgotten, so memory stays bounded on long captures.
"""

from __future__ import annotations

from collections.abc import Callable

from rdprobe.capture.connection import RdpConnection
from rdprobe.capture.flows import CLIENT, SERVER
from rdprobe.capture.linklayer import Packet
from rdprobe.protocol import rdpudp
from rdprobe.protocol.errors import ProtocolError

__all__ = ["UdpTracker"]

MAX_UDP_FLOWS = 10_000
_SYN = int(rdpudp.Flag.RDPUDP_FLAG_SYN)
_ACK = int(rdpudp.Flag.RDPUDP_FLAG_ACK)
_KNOWN_FLAGS = sum(rdpudp.Flag)
_MIN_MTU, _MAX_MTU = rdpudp.MIN_MTU, rdpudp.MAX_MTU


def midstream_rdpudp(data: bytes) -> bool:
    """An RDPUDP_FEC_HEADER (snSourceAck, uReceiveWindowSize, uFlags) with ACK and known flags."""
    if len(data) < 8:
        return False
    flags = (data[6] << 8) | data[7]
    window = (data[4] << 8) | data[5]
    return bool(flags & _ACK) and not flags & ~_KNOWN_FLAGS and not flags & _SYN and 0 < window


class UdpTracker:
    """Feed every UDP packet to :meth:`packet`; :meth:`finish` emits what is left."""

    def __init__(
        self,
        emit: Callable[[RdpConnection], None],
        wanted: Callable[[bytes, int, bytes, int], bool],
        rdp_ports: set[int],
        *,
        idle_timeout: float = 300.0,
    ) -> None:
        self.emit, self.wanted, self.rdp_ports = emit, wanted, rdp_ports
        self.idle_timeout = idle_timeout
        self._index: dict[tuple[bytes, int, bytes, int], tuple[RdpConnection, int]] = {}
        self._conns: dict[int, RdpConnection] = {}
        self._countdown = 16384
        self.now = 0.0

    def packet(self, ts: float, pkt: Packet) -> None:
        if ts > self.now:
            self.now = ts
        self._countdown -= 1
        if self._countdown <= 0:
            self._sweep()
        src, sport, dst, dport, data = pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.payload
        entry = self._index.get((src, sport, dst, dport))
        if entry is not None:
            self._count(entry[0], entry[1], ts, data)
            return
        syn = _syn(data)
        if syn is not None:
            if syn.is_syn_ack:  # its SYN was not captured: the sender is the server
                conn = self._new(dst, dport, src, sport, ts, missed=True)
                if conn is not None:
                    self._count(conn, SERVER, ts, data)
            elif syn.ack == rdpudp.SN_SOURCE_ACK_SYN:
                conn = self._new(src, sport, dst, dport, ts)
                if conn is not None:
                    self._count(conn, CLIENT, ts, data)
            return
        if (dport in self.rdp_ports or sport in self.rdp_ports) and midstream_rdpudp(data):
            if dport in self.rdp_ports:
                conn = self._new(src, sport, dst, dport, ts, missed=True)
                direction = CLIENT
            else:
                conn = self._new(dst, dport, src, sport, ts, missed=True)
                direction = SERVER
            if conn is not None:
                self._count(conn, direction, ts, data)

    def finish(self) -> None:
        for conn in list(self._conns.values()):
            self._end(conn, "capture-end")

    # -- internals -----------------------------------------------------------------------------

    def _new(self, client: bytes, cport: int, server: bytes, sport: int, ts: float, *,
             missed: bool = False) -> RdpConnection | None:  # fmt: skip
        if len(self._conns) >= MAX_UDP_FLOWS or not self.wanted(client, cport, server, sport):
            return None
        conn = RdpConnection("udp", client, cport, server, sport, ts)
        conn.packets = (0, 0)
        if missed:
            conn.start_missed = True
            conn.notes.append(
                "the capture starts inside this RDP-UDP flow: its SYN was not captured"
            )
        self._index[(client, cport, server, sport)] = (conn, CLIENT)
        self._index[(server, sport, client, cport)] = (conn, SERVER)
        self._conns[id(conn)] = conn
        return conn

    def _count(self, conn: RdpConnection, direction: int, ts: float, data: bytes) -> None:
        conn.end_ts = ts
        conn.timing["last"] = ts
        if direction == CLIENT:
            conn.packets = (conn.packets[0] + 1, conn.packets[1])
            conn.bytes = (conn.bytes[0] + len(data), conn.bytes[1])
        else:
            conn.packets = (conn.packets[0], conn.packets[1] + 1)
            conn.bytes = (conn.bytes[0], conn.bytes[1] + len(data))
        if len(data) < 8 or not data[7] & _SYN:
            return
        syn = _syn(data)
        if syn is None:
            return
        if direction == SERVER and syn.is_syn_ack and conn.udp_syn_ack is None:
            conn.udp_syn_ack = syn
            conn.timing["udp_synack"] = ts
        elif direction == CLIENT and not syn.is_syn_ack and syn.ack == rdpudp.SN_SOURCE_ACK_SYN:
            conn.udp_syn_count += 1
            if conn.udp_syn is None:
                conn.udp_syn = syn
                conn.timing["udp_syn"] = ts

    def _end(self, conn: RdpConnection, reason: str) -> None:
        if self._conns.pop(id(conn), None) is None:
            return
        for key in (
            (conn.client, conn.client_port, conn.server, conn.server_port),
            (conn.server, conn.server_port, conn.client, conn.client_port),
        ):
            self._index.pop(key, None)
        conn.end_reason = reason
        self.emit(conn)

    def _sweep(self) -> None:
        self._countdown = 16384
        before = self.now - self.idle_timeout
        for conn in [c for c in self._conns.values() if (c.end_ts or c.first_ts) < before]:
            self._end(conn, "idle-timeout")


def _syn(data: bytes) -> rdpudp.RdpUdpSyn | None:
    """An RDP-UDP SYN or SYN+ACK with MTUs in range, else None."""
    if len(data) < 16 or not data[7] & _SYN:
        return None
    # the MTUs (2.2.2.5) first: most datagrams with the SYN bit set are not RDP, and this test
    # costs two reads where parsing costs a dataclass (the verdict is the same)
    up, down = (data[12] << 8) | data[13], (data[14] << 8) | data[15]
    if not (_MIN_MTU <= up <= _MAX_MTU and _MIN_MTU <= down <= _MAX_MTU):
        return None
    try:
        syn = rdpudp.parse_syn(data)
    except ProtocolError:
        return None
    return syn if syn.mtus_in_range else None
