"""TCP stream reassembly and the flow table (roles, timing, endings, fast path, expiry)."""

from __future__ import annotations

import random
from pathlib import Path

from rdprobe.capture.flows import CLIENT, SERVER, Flow, FlowHandler, FlowTable
from rdprobe.capture.linklayer import TCP, UDP, Packet
from rdprobe.capture.reassembly import Reassembler, StreamData, StreamGap

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def data_of(events: list) -> bytes:
    assert all(isinstance(e, StreamData) for e in events), events
    return b"".join(e.data for e in events)


def in_order(events: list) -> bool:
    offsets = [e.offset for e in events]
    sizes = [len(e.data) if isinstance(e, StreamData) else e.length for e in events]
    return all(offsets[i] + sizes[i] == offsets[i + 1] for i in range(len(events) - 1))


# -- Reassembler ----------------------------------------------------------------------------------


def test_in_order_after_syn() -> None:
    r = Reassembler()
    r.feed(1000, b"", 0.0, syn=True)
    r.feed(1001, b"hello ", 1.0)
    r.feed(1007, b"world", 2.0)
    events = r.pop()
    assert events == [StreamData(0, b"hello ", 1.0), StreamData(6, b"world", 2.0)]
    assert r.pop() == []


def test_retransmission_is_delivered_once() -> None:
    r = Reassembler()
    r.feed(1, b"", 0.0, syn=True)
    r.feed(2, b"abcdef", 1.0)
    r.feed(2, b"abcdef", 1.5)
    r.feed(8, b"gh", 2.0)
    r.feed(2, b"abcdefgh", 2.5)
    assert data_of(r.pop()) == b"abcdefgh"
    assert r.retransmitted_bytes == 14


def test_out_of_order_completes_with_timestamp_of_filling_segment() -> None:
    r = Reassembler()
    r.feed(100, b"", 0.0, syn=True)
    r.feed(105, b"EFGH", 1.0)
    r.feed(109, b"IJ", 2.0)
    assert r.pop() == [] and r.buffered == 6 and r.out_of_order == 2
    r.feed(101, b"ABCD", 3.0)
    events = r.pop()
    assert data_of(events) == b"ABCDEFGHIJ" and {e.ts for e in events} == {3.0}
    assert in_order(events) and r.buffered == 0


def test_overlaps_first_seen_wins() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(5, b"xxxx", 1.0)  # offsets 4..7, buffered first
    r.feed(3, b"yyyyyyyyyy", 2.0)  # offsets 2..11, overlaps the buffered bytes
    r.feed(1, b"AB", 3.0)  # offsets 0..1 fill the hole
    r.feed(2, b"zzzzzzzzzzzQ", 4.0)  # overlaps everything delivered, adds one byte
    assert data_of(r.pop()) == b"AByyxxxxyyyyQ"
    assert r.overlap_bytes > 0


def test_missing_segment_is_a_gap_never_guessed() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"aaaa", 1.0)
    r.feed(9, b"cccc", 2.0)  # offsets 4..7 never captured
    assert data_of(r.pop()) == b"aaaa"
    r.flush(5.0)
    assert r.pop() == [StreamGap(4, 4, 5.0), StreamData(8, b"cccc", 5.0)]
    assert (r.gaps, r.gap_bytes) == (1, 4)


def test_peer_ack_beyond_a_hole_declares_the_gap_at_once() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"aaaa", 1.0)
    r.feed(9, b"cccc", 2.0)
    r.ack(13, 2.1)  # the receiver got everything: offsets 4..7 are a capture loss
    assert r.pop()[1:] == [StreamGap(4, 4, 2.1), StreamData(8, b"cccc", 2.1)]
    r.ack(20, 3.0)  # data after the last captured segment, acknowledged
    assert r.pop() == [StreamGap(12, 7, 3.0)]
    r.ack(20, 3.5)
    assert r.pop() == []


def test_ack_of_uncaptured_fin_is_no_gap() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"abc", 1.0)
    r.ack(5, 2.0)  # data 1..3 + FIN at 4
    r.flush(3.0)
    assert data_of(r.pop()) == b"abc"


def test_mid_connection_start_uses_first_seen_sequence() -> None:
    r = Reassembler()
    r.feed(5_000_000, b"middle", 1.0)
    r.feed(5_000_006, b"-end", 2.0)
    r.feed(4_999_990, b"earlier data", 3.0)  # sent before the capture started: ignored
    assert r.pop() == [StreamData(0, b"middle", 1.0), StreamData(6, b"-end", 2.0)]
    assert not r.syn_seen


def test_sequence_wraparound() -> None:
    r = Reassembler()
    isn = 0xFFFFFFF0
    r.feed(isn, b"", 0.0, syn=True)
    payload = bytes(range(64))
    segments = [(isn + 1 + i, payload[i : i + 8]) for i in range(0, 64, 8)]
    segments[2], segments[3] = segments[3], segments[2]
    for k, (seq, seg) in enumerate(segments):
        r.feed(seq & 0xFFFFFFFF, seg, float(k))
    events = r.pop()
    assert data_of(events) == payload and in_order(events)
    r.ack((isn + 1 + 64) & 0xFFFFFFFF, 9.0)
    assert r.pop() == []


def test_buffer_cap_declares_gap_and_bounds_memory() -> None:
    r = Reassembler(max_buffer=1000)
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"a", 0.5)
    for i in range(30):  # offsets from 100 on; 1..99 is never captured
        r.feed(101 + i * 100, b"b" * 100, 1.0 + i)
        assert r.buffered <= 1000
    events = r.pop()
    assert events[1] == StreamGap(1, 99, events[1].ts) and in_order(events)
    assert r.gaps == 1 and r.next >= 100 + 30 * 100 - 1000


def test_segment_count_cap() -> None:
    r = Reassembler(max_segments=10)
    r.feed(0, b"", 0.0, syn=True)
    for i in range(50):
        r.feed(10 + 2 * i, b"x", float(i))  # every other byte: 50 one-byte holes
        assert len(r._starts) <= 10
    assert r.gaps > 0


def test_snaplen_cut_payload_becomes_a_gap() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"head", 1.0, missing=96)
    r.flush(2.0)
    assert r.pop() == [StreamData(0, b"head", 1.0), StreamGap(4, 96, 2.0)]


def test_random_segmentation_loss_free_reassembles_exactly() -> None:
    rng = random.Random(3)
    for _ in range(200):
        stream = rng.randbytes(rng.randrange(1, 3000))
        isn = rng.getrandbits(32)
        cuts = sorted({0, len(stream), *(rng.randrange(len(stream)) for _ in range(20))})
        segs = [(cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1)]
        segs += [rng.choice(segs) for _ in range(5)]  # retransmissions
        segs += [(a, min(len(stream), a + 50)) for a, _ in rng.sample(segs, 3)]  # overlaps
        rng.shuffle(segs)
        r = Reassembler()
        r.feed(isn, b"", 0.0, syn=True)
        events = []
        for k, (a, b) in enumerate(segs):
            r.feed((isn + 1 + a) & 0xFFFFFFFF, stream[a:b], float(k))
            events += r.pop()
        r.flush(99.0)
        events += r.pop()
        assert data_of(events) == stream and in_order(events) and r.gaps == 0


# -- FlowTable ------------------------------------------------------------------------------------

C, S = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7])


def tcp(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"") -> Packet:  # fmt: skip
    return Packet(src, dst, TCP, sport, dport, seq, ack, flags, 1000, payload, 0)


def handshake(cport: int = 50000, sport: int = 3389) -> list[tuple[float, Packet]]:
    return [
        (1.0, tcp(C, cport, S, sport, 100, 0, SYN)),
        (1.1, tcp(S, sport, C, cport, 900, 101, SYN | ACK)),
        (1.2, tcp(C, cport, S, sport, 101, 901, ACK)),
    ]


CR = bytes.fromhex("030000130ee000000000000100080003000000")
CC = bytes.fromhex("030000130ed000001234000201080002000000")


class Recorder(FlowHandler):
    def __init__(self) -> None:
        self.events: list[tuple[int, object]] = []
        self.ended: list[Flow] = []
        self.classified = 0
        self.udp: list[Packet] = []

    def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
        self.classified += 1
        if direction != CLIENT:
            return None
        if len(data) < 6:
            return None
        return data[:2] == b"\x03\x00" and data[5] & 0xF0 == 0xE0

    def on_stream(self, flow: Flow, direction: int, event: object) -> None:
        self.events.append((direction, event))

    def on_end(self, flow: Flow) -> None:
        self.ended.append(flow)

    def on_udp(self, ts: float, packet: Packet) -> None:
        self.udp.append(packet)


def run(packets: list[tuple[float, Packet]], **kw: object) -> tuple[FlowTable, Recorder]:
    rec = Recorder()
    table = FlowTable(rec, **kw)  # type: ignore[arg-type]
    for ts, pkt in packets:
        table.feed_packet(ts, pkt)
    table.finish()
    return table, rec


def test_rdp_flow_roles_timing_and_data() -> None:
    pkts = [
        *handshake(),
        (1.3, tcp(C, 50000, S, 3389, 101, 901, PSH | ACK, CR[:4])),  # the CR split in two
        (1.35, tcp(C, 50000, S, 3389, 105, 901, PSH | ACK, CR[4:])),
        (1.4, tcp(S, 3389, C, 50000, 901, 120, PSH | ACK, CC)),
        (1.5, tcp(S, 3389, C, 50000, 920, 120, FIN | ACK)),
        (1.6, tcp(C, 50000, S, 3389, 120, 921, FIN | ACK)),
    ]
    table, rec = run(pkts)
    (flow,) = rec.ended
    assert (flow.client, flow.client_port, flow.server, flow.server_port) == (C, 50000, S, 3389)
    assert flow.role_basis == "syn" and flow.interest is True
    assert (flow.syn_ts, flow.synack_ts, flow.ack_ts) == (1.0, 1.1, 1.2)
    assert abs(flow.handshake_rtt - 0.2) < 1e-9
    assert (flow.end_reason, flow.ended_by, flow.end_ts) == ("fin", SERVER, 1.5)
    assert flow.fin_ts == [1.6, 1.5] and flow.closed
    assert [d for d, _ in rec.events] == [CLIENT, CLIENT, SERVER]
    assert b"".join(e.data for d, e in rec.events if d == CLIENT) == CR
    assert rec.events[2][1] == StreamData(0, CC, 1.4)
    assert table.stats["interesting"] == 1 and flow.client_address == "192.0.2.1"


def test_uninteresting_flows_stop_buffering_and_are_not_reported() -> None:
    pkts = [
        *handshake(40000, 80),
        (1.3, tcp(C, 40000, S, 80, 101, 901, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n")),
        (1.4, tcp(S, 80, C, 40000, 901, 119, PSH | ACK, b"HTTP/1.1 200 OK\r\n" * 50)),
    ]
    table, rec = run(pkts)
    assert rec.ended == [] and rec.events == [] and rec.classified == 1
    assert table.stats["uninteresting"] == 1 and table.active == 0


def test_rdp_on_any_port_and_flows_without_data_are_reported() -> None:
    pkts = [*handshake(51000, 443), (1.3, tcp(C, 51000, S, 443, 101, 901, PSH | ACK, CR))]
    pkts += [
        (2.0, tcp(C, 52000, S, 3389, 7, 0, SYN)),
        (2.1, tcp(S, 3389, C, 52000, 0, 8, RST | ACK)),
    ]
    _, rec = run(pkts)
    rdp, refused = rec.ended
    assert rdp.interest is True and rdp.server_port == 443
    assert refused.interest is None and refused.end_reason == "rst" and refused.ended_by == SERVER
    assert refused.synack_ts is None and refused.rst_ts == [None, 2.1]


def test_roles_without_syn() -> None:
    pkts = [(1.0, tcp(S, 3389, C, 50000, 900, 101, SYN | ACK))]
    pkts += [(2.0, tcp(S, 3389, C, 50001, 5, 6, ACK, b"\x00" * 3))]
    pkts += [(3.0, tcp(C, 4000, S, 4000, 5, 6, ACK))]
    _, rec = run(pkts)
    by_port = {f.client_port: f for f in rec.ended}
    assert by_port[50000].role_basis == "synack" and by_port[50000].server_port == 3389
    assert by_port[50001].role_basis == "port" and by_port[50001].server_port == 3389
    assert by_port[4000].role_basis == "port" and by_port[4000].client == C


def test_idle_flows_expire_and_capture_end_is_reported() -> None:
    pkts = [*handshake(), (1.3, tcp(C, 50000, S, 3389, 101, 901, PSH | ACK, CR))]
    for i in range(20000):  # other traffic moving the clock on
        pkts.append((2.0 + i * 0.1, tcp(C, 10000 + i % 5000, S, 80, i, 0, SYN)))
    pkts += handshake(50001)
    table, rec = run(pkts, idle_timeout=60.0, linger=5.0)
    first = next(f for f in rec.ended if f.client_port == 50000)
    last = next(f for f in rec.ended if f.client_port == 50001)
    assert first.end_reason == "idle-timeout" and first.end_ts == 1.3
    assert last.end_reason == "capture-end"
    assert table.stats["expired"] > 0 and table.active == 0


def test_port_reuse_after_close_starts_a_new_flow() -> None:
    pkts = [
        *handshake(),
        (1.3, tcp(C, 50000, S, 3389, 101, 901, RST)),
        (5.0, tcp(C, 50000, S, 3389, 7777, 0, SYN)),
    ]
    table, rec = run(pkts)
    assert [f.end_reason for f in rec.ended] == ["rst", "capture-end"]
    assert rec.ended[1].syn_ts == 5.0 and table.stats["flows"] == 2
    _, rec = run([*handshake(), (9.0, tcp(C, 50000, S, 3389, 5555, 0, SYN))])
    assert [f.end_reason for f in rec.ended] == ["port-reused", "capture-end"]
    _, rec = run([*handshake(), (1.05, tcp(C, 50000, S, 3389, 100, 0, SYN))])  # retransmission
    assert len(rec.ended) == 1 and rec.ended[0].syn_count == 2


def test_gap_in_interesting_flow_is_passed_on() -> None:
    pkts = [
        *handshake(),
        (1.3, tcp(C, 50000, S, 3389, 101, 901, PSH | ACK, CR)),
        (1.5, tcp(C, 50000, S, 3389, 140, 901, PSH | ACK, b"later")),  # 120..139 lost
        (1.6, tcp(S, 3389, C, 50000, 901, 145, ACK)),
    ]
    _, rec = run(pkts)
    assert [type(e).__name__ for _, e in rec.events] == ["StreamData", "StreamGap", "StreamData"]
    assert rec.events[1][1] == StreamGap(19, 20, 1.6)


def test_max_flows_evicts() -> None:
    pkts = [(float(i), tcp(C, 1024 + i, S, 3389, i, 0, SYN)) for i in range(500)]
    table, rec = run(pkts, max_flows=100)
    assert table.stats["expired"] >= 400 and len(rec.ended) == 500


def test_udp_datagrams_go_to_the_callback() -> None:
    dgram = Packet(C, S, UDP, 50000, 3389, 0, 0, 0, 0, b"\xff\xff\xff\xff\x04\xc0\x00\x01", 0)
    table, rec = run([(1.0, dgram)])
    assert rec.udp == [dgram] and table.stats["udp"] == 1 and table.stats["flows"] == 0


def test_classify_work_is_bounded_for_tiny_segments() -> None:
    class Undecided(Recorder):
        def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
            self.classified += 1
            self.seen = len(data)
            return None

    rec = Undecided()
    table = FlowTable(rec, decide_limit=4096)
    for ts, pkt in handshake():
        table.feed_packet(ts, pkt)
    for i in range(6000):  # one byte per segment
        table.feed_packet(2.0 + i, tcp(C, 50000, S, 3389, 101 + i, 901, ACK, b"\x03"))
    # given up at the limit: the flow left the table (remembered only as "seen, not interesting")
    assert table.active == 0 and table.stats["uninteresting"] == 1
    assert rec.classified <= 14 and rec.seen == 4096


def test_big_pcap_generator_places_the_rdp_handshakes(tmp_path: Path) -> None:
    import importlib.util

    from rdprobe.capture.records import CaptureReader

    script = Path(__file__).resolve().parent.parent / "scripts" / "make_big_pcap.py"
    spec = importlib.util.spec_from_file_location("make_big_pcap", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    big_reply = bytes(3000)  # split into 1460-byte segments by the generator
    summary = module.write_big_pcap(
        tmp_path / "big.pcap.gz", 20000, 7, ([CR, b"\x03\x00\x00\x08abcd"], [CC, big_reply]),
        compress=True,
    )  # fmt: skip
    rec = Recorder()
    with CaptureReader(tmp_path / "big.pcap.gz") as reader:
        FlowTable(rec).process(reader)
        assert reader.records == summary["packets"] >= 20000 and not reader.warnings
    found = {(f.client_address, f.client_port, f.server_address, f.server_port) for f in rec.ended}
    placed = {(c["client"], c["client_port"], c["server"], c["server_port"])
              for c in summary["rdp_connections"]}  # fmt: skip
    assert len(placed) == 7 and placed <= found
    rdp = [f for f in rec.ended if f.interest]
    assert len(rdp) == 7 and all(f.end_reason == "fin" and f.ended_by == CLIENT for f in rdp)
    server_bytes = sum(len(e.data) for d, e in rec.events if d == SERVER)
    assert server_bytes == 7 * (len(CC) + len(big_reply))


def test_bogus_ack_far_ahead_is_ignored() -> None:
    r = Reassembler()
    r.feed(0, b"", 0.0, syn=True)
    r.feed(1, b"abc", 1.0)
    r.ack(0x7000_0000, 2.0)
    r.feed(4, b"def", 3.0)
    assert r.pop() == [StreamData(0, b"abc", 1.0), StreamData(3, b"def", 3.0)] and r.gaps == 0


def test_busy_link_flows_cost_no_flow_object() -> None:
    """Issue 12: with start_bytes, mid-stream flows whose first byte cannot start RDP, and
    SYN-started flows whose first payload byte cannot, leave nothing in the table."""
    from rdprobe.capture.rdp import RdpHandler

    found: list = []
    table = FlowTable(RdpHandler(found.append))
    for i in range(20000):  # one mid-stream packet per flow: HTTP, TLS application data, ACKs
        src = bytes([10, 1, i >> 8 & 255, i & 255])
        payload = (b"GET / HTTP/1.1\r\n", b"\x17\x03\x03\x00\x10" + bytes(16), b"")[i % 3]
        table.feed_packet(float(i), tcp(src, 40000, S, 443, i, 7, PSH | ACK, payload))
    assert table.stats["flows"] == 0 and table.active == 0 and not table._seen
    for ts, pkt in handshake(41000, 80):
        table.feed_packet(ts, pkt)
    assert table.active == 1
    table.feed_packet(1.3, tcp(C, 41000, S, 80, 101, 901, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n"))
    assert table.active == 0 and table.stats["uninteresting"] == 1
    # a first byte that could start RDP but does not: decided once, then remembered (bounded)
    table.feed_packet(
        2.0, tcp(C, 42000, S, 3389, 5, 6, PSH | ACK, b"\x03\x00\x00\x0c\x02\xf0\x80x")
    )
    assert table.active == 0 and len(table._seen) == 2
    table.finish()
    assert found == []
