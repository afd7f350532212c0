r"""Connection table for captures: TCP flows with roles, timing, endings and reassembled streams.

Roles: the **client** is the sender of a SYN without ACK; if the capture missed it, the sender of a
SYN+ACK is the server; otherwise (mid-connection start) the endpoint with the lower port is the
server, and with equal ports the first packet's destination (:attr:`Flow.role_basis` says which rule
applied). Direction 0 (:data:`CLIENT`) is client-to-server, 1 (:data:`SERVER`) server-to-client.

Fast path: every flow starts *undecided*. When its first payload bytes arrive, the upper layer's
:meth:`FlowHandler.classify` sees them (per direction, up to ``decide_limit`` bytes) and answers True
(dissect it), False (only count it) or None (show me more). Undecided flows queue their stream events;
interesting flows then get every :class:`~rdprobe.capture.reassembly.StreamData` /
:class:`~rdprobe.capture.reassembly.StreamGap` through :meth:`FlowHandler.on_stream`, in timestamp
order; uninteresting flows drop their reassemblers and keep only counters. UDP datagrams go to
:meth:`FlowHandler.on_udp` (e.g. RDP-UDP SYN recognition, MS-RDPEUDP 3.1.5.1.1). With
:attr:`FlowHandler.start_bytes`, a flow whose first payload byte is not one of them is dropped at
that packet, before any Packet is built for it when the records come from a classic pcap file
(:mod:`rdprobe.capture.fastpath`).

Endings: a flow ends ``linger`` seconds (capture time) after its first RST or its second-direction FIN,
after ``idle_timeout`` seconds without packets, when a SYN that is not a retransmission of its own
reuses its ports, or at :meth:`FlowTable.finish` (end of capture). :attr:`Flow.end_reason` keeps
the first FIN or RST seen, else says why the flow was closed by the table. Then
its streams are flushed (holes become gaps) and :meth:`FlowHandler.on_end` runs for every flow that
was not declared uninteresting (including flows that never carried data, e.g. a SYN answered by RST).
Memory is bounded: expired flows leave the table, and ``max_flows`` evicts the longest idle.

Use::

    class Rdp(FlowHandler):
        def classify(self, flow, direction, data):
            if direction == CLIENT and len(data) >= 6:
                return data[:2] == b"\x03\x00" and data[5] & 0xF0 == 0xE0  # TPKT + X.224 CR
            return None if direction == CLIENT else False
        def on_stream(self, flow, direction, event): ...  # feed the sans-IO parsers
        def on_end(self, flow): ...  # report the connection

    with CaptureReader(path) as reader:  # CaptureError if it is no capture
        table = FlowTable(Rdp())
        table.process(reader)  # reader.warnings: damage found on the way
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import cast

from rdprobe.capture.fastpath import feed_pcap
from rdprobe.capture.linklayer import UDP, Packet, Skip, decode
from rdprobe.capture.reassembly import Reassembler, StreamData, StreamEvent
from rdprobe.capture.records import CaptureReader

__all__ = ["CLIENT", "SERVER", "Flow", "FlowHandler", "FlowTable"]

from rdprobe.capture.flow import (
    ACK,
    CLIENT,
    END_CAPTURE,
    END_FIN,
    END_IDLE,
    END_REUSED,
    END_RST,
    FIN,
    MAX_SEEN,
    RST,
    SERVER,
    SYN,
    Flow,
)


class FlowHandler:
    """Callbacks from :class:`FlowTable`; override what you need (the defaults ignore everything)."""

    #: First payload bytes that can start an interesting flow; None = any. With a set, a flow
    #: whose first payload starts otherwise costs no Flow object at all (the busy-link fast path),
    #: and neither does a packet without payload or SYN of a flow the table does not hold.
    start_bytes: frozenset[int] | None = None

    def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
        """First contiguous payload bytes of one direction: True, False, or None for more."""
        return False

    def on_stream(self, flow: Flow, direction: int, event: StreamEvent) -> None:
        """Reassembled data or a gap of an interesting flow, in timestamp order."""

    def on_end(self, flow: Flow) -> None:
        """A flow not declared uninteresting ended; its streams have been flushed."""

    def on_udp(self, ts: float, packet: Packet) -> None:
        """Every UDP datagram."""


class FlowTable:
    """Feed records or packets; callbacks go to ``handler``. Call :meth:`finish` at the end."""

    def __init__(
        self,
        handler: FlowHandler | None = None,
        *,
        idle_timeout: float = 300.0,
        linger: float = 10.0,
        max_flows: int = 200_000,
        decide_limit: int = 65536,
        max_buffer: int = 1 << 20,
    ) -> None:
        self.handler = handler or FlowHandler()
        self.idle_timeout = idle_timeout
        self.linger = linger
        self.max_flows = max_flows
        self.decide_limit = decide_limit
        self.max_buffer = max_buffer
        self.start_bytes = self.handler.start_bytes
        self._seen: set[int] = set()  # hashes of flow keys decided "not interesting"
        self._index: dict[bytes, tuple[Flow, int]] = {}  # flow_key() -> (flow, direction)
        self._flows: dict[int, Flow] = {}
        self.now = 0.0
        self._next_sweep = 0
        self.records = 0
        self.tcp_packets = 0
        self.udp_packets = 0
        self._counts: dict[str, int] = {
            "flows": 0,
            "interesting": 0,
            "uninteresting": 0,
            "expired": 0,
            **{key: 0 for key in _SKIP_KEYS.values()},
        }

    @property
    def stats(self) -> dict[str, int]:
        """Counters: records, tcp, udp, flows, interesting, uninteresting, expired, skip_<reason>."""
        return {
            "records": self.records,
            "tcp": self.tcp_packets,
            "udp": self.udp_packets,
            **self._counts,
        }

    @property
    def active(self) -> int:
        """Flows currently held in the table."""
        return len(self._flows)

    def process(self, records: Iterable[tuple[float, int, bytes, int]]) -> None:
        """Run every record through :meth:`feed`, then :meth:`finish`. A classic pcap
        :class:`CaptureReader` is read by :func:`~rdprobe.capture.fastpath.feed_pcap` instead,
        which gives the table the same packets without copying the ones it would drop."""
        if isinstance(records, CaptureReader) and records.format == "pcap":
            feed_pcap(self, records)
            self.finish()
            return
        feed_packet = self.feed_packet
        counts = self._counts
        n = self.records
        try:
            for ts, linktype, data, _orig in records:
                n += 1
                pkt = decode(linktype, data)
                if type(pkt) is Packet:
                    feed_packet(ts, pkt)
                else:
                    counts[_SKIP_KEYS[cast(Skip, pkt)]] += 1  # not a Packet: a Skip
        finally:
            self.records = n
        self.finish()

    def feed(self, ts: float, linktype: int, data: bytes) -> None:
        """One captured frame."""
        self.records += 1
        pkt = decode(linktype, data)
        if type(pkt) is Packet:
            self.feed_packet(ts, pkt)
        else:
            self.skipped(cast(Skip, pkt))  # not a Packet: a Skip

    def skipped(self, reason: Skip) -> None:
        """Count a record that gave no TCP/UDP packet."""
        self._counts[_SKIP_KEYS[reason]] += 1

    def feed_packet(self, ts: float, pkt: Packet) -> None:
        """One decoded TCP or UDP packet."""
        if ts > self.now:
            self.now = ts
        src, dst, proto, sport, dport, _seq, _ack, flags, _win, payload, _missing = pkt
        if proto == UDP:
            self.udp_packets += 1
            self.handler.on_udp(ts, pkt)
            return
        self.tcp_packets += 1
        self._next_sweep -= 1
        if self._next_sweep <= 0:
            self._sweep()
        key = src + dst + _ports(sport, dport)  # flow_key(), inlined
        entry = self._index.get(key)
        if not flags & SYN:
            starts = self.start_bytes
            if entry is None:
                if starts is not None and (not payload or payload[0] not in starts):
                    return  # mid-stream, and its first byte cannot start an interesting flow
                if hash(key) in self._seen:
                    return
            elif starts is not None and payload and payload[0] not in starts:
                flow = entry[0]
                if flow.streams is None and flow.interest is None:
                    self._forget(flow, mark=False)  # what feed_tcp would end with, sooner
                    return
        self.feed_tcp(ts, pkt, key, entry)

    def feed_tcp(self, ts: float, pkt: Packet, key: bytes, entry: tuple[Flow, int] | None) -> None:
        """One TCP packet past the mid-stream test of :meth:`feed_packet` (which keeps the
        clock, counters and sweeps): ``key`` is its :func:`flow_key`, ``entry`` what the table
        holds for it."""
        _src, _dst, _proto, _sport, _dport, seq, ack, flags, _win, payload, missing = pkt
        if entry is None:
            entry = self._new_flow(ts, pkt, key)
        elif flags & 0x12 == SYN and (entry[1] != CLIENT or entry[0].isn[CLIENT] != seq):
            self._end(entry[0], END_REUSED)  # a new connection on the same ports
            entry = self._new_flow(ts, pkt, key)
        flow, d = entry
        flow.last_ts = ts
        flow.packets[d] += 1
        size = len(payload) + missing
        flow.bytes[d] += size
        if flags & 0x07 or (d == CLIENT and flow.ack_ts is None):
            self._control(flow, d, flags, ts, pkt)
        streams = flow.streams
        if streams is None:
            if flow.interest is not None or not size:  # handshake read, or no data yet
                return
            if payload and self.start_bytes is not None and payload[0] not in self.start_bytes:
                self._forget(flow, mark=False)  # its later packets fail the same first-byte test
                return
            streams = flow.streams = self._streams(flow)
        if size or flags & 0x03:
            streams[d].feed(
                seq, payload, ts, syn=bool(flags & SYN), fin=bool(flags & FIN), missing=missing
            )
        if flags & ACK and not flags & RST:
            streams[1 - d].ack(ack, ts)
        if flow.interest:
            self._deliver(flow)
        elif streams[0].events or streams[1].events:
            self._decide(flow, d)

    def finish(self) -> None:
        """End of capture: every remaining flow ends (``capture-end`` unless already closed)."""
        for flow in list(self._flows.values()):
            self._end(flow, END_CAPTURE)

    # -- internals ---------------------------------------------------------------------------------

    def _new_flow(self, ts: float, pkt: Packet, key: bytes) -> tuple[Flow, int]:
        src, sport, dst, dport = pkt.src, pkt.sport, pkt.dst, pkt.dport
        if pkt.flags & 0x12 == SYN:
            basis, client_is_src = "syn", True
        elif pkt.flags & 0x12 == SYN | ACK:
            basis, client_is_src = "synack", False
        else:
            basis, client_is_src = "port", sport > dport or (sport == dport)
        if len(self._flows) >= self.max_flows:
            self._evict()
        back = flow_key(dst, dport, src, sport)
        if client_is_src:
            flow = Flow(src, sport, dst, dport, basis, ts)
            flow.keys = fwd, rev = key, back
        else:
            flow = Flow(dst, dport, src, sport, basis, ts)
            flow.keys = fwd, rev = back, key
        index = self._index
        index[fwd] = (flow, CLIENT)
        index[rev] = (flow, SERVER)
        self._flows[id(flow)] = flow
        self._counts["flows"] += 1
        return index[key]

    def _streams(self, flow: Flow) -> tuple[Reassembler, Reassembler]:
        """The reassemblers, made at the first payload byte (a flow without data needs none),
        started at the sequence numbers of the SYNs seen."""
        streams = (Reassembler(self.max_buffer), Reassembler(self.max_buffer))
        for direction in (CLIENT, SERVER):
            isn = flow.isn[direction]
            if isn is not None:
                streams[direction].feed(isn, b"", flow.first_ts, syn=True)
        return streams

    def _forget(self, flow: Flow, *, mark: bool = True) -> None:
        """Not interesting: the flow leaves the table; with ``mark``, a bounded set of key hashes
        remembers it (its later packets are dropped without a new Flow)."""
        self._counts["uninteresting"] += 1
        flow.interest = False
        flow.streams = None
        self._flows.pop(id(flow), None)
        seen = self._seen
        if len(seen) >= MAX_SEEN:
            seen.clear()
        for key in flow.keys:
            if self._index.get(key, (None,))[0] is flow:
                del self._index[key]
                if mark:
                    seen.add(hash(key))

    def _control(self, flow: Flow, d: int, flags: int, ts: float, pkt: Packet) -> None:
        if flags & SYN:
            if flags & ACK:
                if d == SERVER and flow.synack_ts is None:
                    flow.synack_ts = ts
            elif d == CLIENT:
                flow.syn_count += 1
                if flow.syn_ts is None:
                    flow.syn_ts = ts
            if flow.isn[d] is None:
                flow.isn[d] = pkt.seq
        elif d == CLIENT and flags & ACK and flow.synack_ts is not None and flow.ack_ts is None:
            flow.ack_ts = ts
        if flags & RST:
            if flow.rst_ts[d] is None:
                flow.rst_ts[d] = ts
            if flow.end_reason is None:
                flow.end_reason, flow.ended_by, flow.end_ts = END_RST, d, ts
        if flags & FIN:
            if flow.fin_ts[d] is None:
                flow.fin_ts[d] = ts
            if flow.end_reason is None:
                flow.end_reason, flow.ended_by, flow.end_ts = END_FIN, d, ts

    def _decide(self, flow: Flow, d: int) -> None:
        """Ask the handler about queued bytes; again only once they have doubled (bounded work)."""
        streams = flow.streams
        assert streams is not None
        limit = self.decide_limit
        verdict: bool | None = None
        for direction in (d, 1 - d):
            stream = streams[direction]
            events = stream.events
            if not events:
                continue
            if not isinstance(events[0], StreamData):  # starts with a gap: nothing to recognise
                verdict = False
                break
            queued = stream.next - events[0].offset
            if queued < 2 * flow.asked[direction] and queued < limit:
                continue
            flow.asked[direction] = queued
            parts, size = [], 0
            for ev in events:
                if not isinstance(ev, StreamData) or size >= limit:
                    break
                parts.append(ev.data)
                size += len(ev.data)
            verdict = self.handler.classify(flow, direction, b"".join(parts)[:limit])
            if verdict is None and queued >= limit:
                verdict = False
            if verdict is not None:
                break
        if verdict is None:
            return
        flow.interest = verdict
        if verdict:
            self._counts["interesting"] += 1
            self._deliver(flow)
        else:
            self._forget(flow)

    def _deliver(self, flow: Flow) -> None:
        streams = flow.streams
        assert streams is not None
        on_stream = self.handler.on_stream
        a, b = streams[0].pop(), streams[1].pop()
        if a and b:
            merged = sorted(
                [(ev[2], 0, i, ev) for i, ev in enumerate(a)]
                + [(ev[2], 1, i, ev) for i, ev in enumerate(b)],
                key=lambda t: (t[0], t[2], t[1]),
            )
            for _ts, direction, _i, ev in merged:
                on_stream(flow, direction, ev)
            return
        direction = 0 if a else 1
        for ev in a or b:
            on_stream(flow, direction, ev)

    def _end(self, flow: Flow, reason: str | None = None) -> None:
        if self._flows.pop(id(flow), None) is None:
            return
        for key in flow.keys:
            if self._index.get(key, (None,))[0] is flow:
                del self._index[key]
        if flow.end_reason is None:  # the first FIN / RST, if any, stays the recorded ending
            flow.end_reason = reason or END_CAPTURE
            flow.end_ts = flow.last_ts
        if flow.interest is False:
            return
        if flow.streams is not None:
            for stream in flow.streams:
                stream.flush(flow.last_ts)
            if flow.interest:
                self._deliver(flow)
        self.handler.on_end(flow)

    def _sweep(self) -> None:
        """Expire closed and idle flows (runs every 16384 TCP packets)."""
        self._next_sweep = 16384
        now = self.now
        idle_before = now - self.idle_timeout
        linger_before = now - self.linger
        for flow in list(self._flows.values()):
            if flow.last_ts < idle_before:
                self._counts["expired"] += 1
                self._end(flow, END_IDLE)
            elif flow.last_ts < linger_before and flow.closed:
                self._end(flow)

    def _evict(self) -> None:
        """Too many flows: end the longest-idle tenth of them."""
        flows = sorted(self._flows.values(), key=lambda f: f.last_ts)
        for flow in flows[: max(1, len(flows) // 10)]:
            self._counts["expired"] += 1
            self._end(flow, END_IDLE)


_SKIP_KEYS = {s: f"skip_{s.name.lower()}" for s in Skip}
_ports = struct.Struct("!HH").pack


def flow_key(src: bytes, sport: int, dst: bytes, dport: int) -> bytes:
    """The table's key for one direction of a flow: source and destination address, then the two
    ports (big-endian). For IPv4 without options these are the 12 bytes at offset 12 of the IP
    header, so :mod:`rdprobe.capture.fastpath` takes the key as one slice of the frame."""
    return src + dst + _ports(sport, dport)
