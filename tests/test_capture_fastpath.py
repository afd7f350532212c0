"""The fused classic-pcap loop (rdprobe.capture.fastpath) gives the flow table exactly what the
general path (records -> decode() -> FlowTable.feed_packet) gives it.

Compared packet by packet: every TCP packet that reaches FlowTable.feed_tcp (time, Packet, key),
every UDP datagram the handler gets, every stream event and ending, the table's counters, the
reader's warnings and counts, and the RDP connections found. Inputs: the Zeek captures, both
synthetic big-capture shapes, frames of every header shape on every link type the loop reads in
place (and one it does not), cut by the snaplen, read one byte per read() call, with trailing
bytes, and under mutation (seeded).
"""

from __future__ import annotations

import io
import random
import struct
import sys
from pathlib import Path

import pytest
from fuzzkit import captures, seeds
from fuzzkit.mutate import mutate
from pcapgen import pcapng_bytes

from rdprobe.capture.flows import Flow, FlowHandler, FlowTable
from rdprobe.capture.jsonview import connection_dict
from rdprobe.capture.linklayer import Packet
from rdprobe.capture.rdp import RdpHandler
from rdprobe.capture.records import CaptureError, CaptureReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_big_pcap import write_big_pcap, write_busy_pcap

CR = bytes.fromhex("030000130ee000000000000100080003000000")
CC = bytes.fromhex("030000130ed000001234000201080002000000")


class Tap(FlowTable):
    """A FlowTable that logs what reaches its TCP entry point."""

    def __init__(self, handler: FlowHandler) -> None:
        super().__init__(handler, max_flows=64, idle_timeout=30.0, linger=2.0)
        self.log: list[tuple] = []

    def feed_tcp(self, ts: float, pkt: Packet, key: bytes, entry: tuple[Flow, int] | None) -> None:
        self.log.append(("tcp", ts, tuple(pkt), key, entry is None))
        super().feed_tcp(ts, pkt, key, entry)


class Everything(FlowHandler):
    """Dissects every flow (no start_bytes): the loop may drop only what the table would."""

    def __init__(self, log: list[tuple]) -> None:
        self.log = log

    def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
        self.log.append(("classify", direction, data[:64]))
        return True if len(data) > 3 else None

    def on_stream(self, flow: Flow, direction: int, event: object) -> None:
        self.log.append(("stream", flow.client_port, direction, event))

    def on_end(self, flow: Flow) -> None:
        self.log.append(("end", repr(flow), flow.packets, flow.bytes, flow.handshake))

    def on_udp(self, ts: float, packet: Packet) -> None:
        self.log.append(("udp", ts, tuple(packet)))


class LoggedRdp(RdpHandler):
    def __init__(self, log: list[tuple]) -> None:
        super().__init__(lambda c: log.append(("conn", connection_dict(c))))
        self.log = log

    def on_udp(self, ts: float, packet: Packet) -> None:
        self.log.append(("udp", ts, tuple(packet)))
        super().on_udp(ts, packet)


def _run(data: bytes, handler: type, fast: bool, reader_io: type = io.BytesIO) -> tuple:
    reader = CaptureReader(reader_io(data))
    log: list[tuple] = []
    table = Tap(handler(log))
    table.log = log
    if fast:
        table.process(reader)  # a classic pcap reader: fastpath.feed_pcap
    else:
        for ts, linktype, frame, _orig in reader:
            table.feed(ts, linktype, frame)
        table.finish()
    if isinstance(table.handler, RdpHandler):
        table.handler.finish_udp()
    return log, table.stats, reader.warnings, reader.records, reader.snaplen_cut


def same(data: bytes, reader_io: type = io.BytesIO) -> tuple:
    """Both paths, both handlers; the fast results (asserted equal to the general ones)."""
    for handler in (Everything, LoggedRdp):
        fast = _run(data, handler, True, reader_io)
        general = _run(data, handler, False)
        assert fast == general
    return fast


def pcap(frames: list[bytes], linktype: int = 1, snaplen: int = 65535, cut: int = 0,
         big_endian: bool = False) -> bytes:  # fmt: skip
    e = ">" if big_endian else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)]
    for i, f in enumerate(frames):
        kept = f[: len(f) - cut] if cut and i % 3 == 0 else f
        out.append(struct.pack(e + "IIII", 1_700_000_000 + i // 4, (i * 7919) % 1_000_000,
                               len(kept), len(f)) + kept)  # fmt: skip
    return b"".join(out)


def ipv4(proto: int, body: bytes, src: bytes = b"\x0a\x00\x00\x01", dst: bytes = b"\x0a\x00\x00\x02",
         *, total: int | None = None, frag: int = 0x4000, options: bytes = b"") -> bytes:  # fmt: skip
    ihl = 5 + len(options) // 4
    length = 4 * ihl + len(body) if total is None else total
    return (
        struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 7, frag, 64, proto, 0, src, dst)
        + options
        + body
    )


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", doff: int = 5) -> bytes:
    opts = b"\x01" * (4 * (doff - 5)) if doff > 5 else b""
    return (
        struct.pack("!HHIIBBHHH", sport, dport, seq, 77, doff << 4, flags, 512, 0, 0)
        + opts
        + payload
    )


def udp(sport: int, dport: int, payload: bytes, ulen: int | None = None) -> bytes:
    return (
        struct.pack("!HHHH", sport, dport, 8 + len(payload) if ulen is None else ulen, 0) + payload
    )


def shapes() -> list[bytes]:
    """IP packets of every shape the loop must read in place or hand on."""
    syn, ack, psh, fin, rst = 0x02, 0x10, 0x18, 0x11, 0x04
    rdp_udp_syn = struct.pack(">IHHIHH", 0xFFFFFFFF, 64, 0x0101, 5, 1232, 1232) + bytes(16)
    return [
        ipv4(6, tcp(50000, 3389, 100, syn)),
        ipv4(6, tcp(3389, 50000, 900, syn | ack), b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01"),
        ipv4(6, tcp(50000, 3389, 101, ack)),
        ipv4(6, tcp(50000, 3389, 101, psh, CR[:7])),
        ipv4(6, tcp(50000, 3389, 108, psh, CR[7:], doff=8)),  # TCP options
        ipv4(6, tcp(3389, 50000, 901, psh, CC), b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01"),
        ipv4(6, tcp(40000, 80, 5, psh, b"GET / HTTP/1.1\r\n")),  # mid-stream, dropped
        ipv4(6, tcp(40001, 443, 5, psh, b"\x16\x03\x01\x00\x05hello")),  # may start: decided
        ipv4(6, tcp(40002, 443, 5, psh, b"\x03\x00\x00\x0b\x06\xe0" + bytes(5))),
        ipv4(6, tcp(40003, 22, 5, ack)),  # no payload
        ipv4(6, tcp(40004, 3389, 5, psh, CR), options=b"\x01\x01\x01\x00"),  # IP options
        ipv4(6, tcp(40005, 3389, 5, psh, CR), total=0),  # offload: length 0
        ipv4(6, tcp(40006, 3389, 5, psh, CR), total=30),  # total shorter than the headers
        ipv4(6, tcp(40007, 3389, 5, psh, CR), total=200),  # total past the frame
        ipv4(6, tcp(40008, 3389, 5, psh, CR, doff=4)),  # bad data offset
        ipv4(6, tcp(40009, 3389, 5, psh, CR, doff=15)),  # data offset past the end
        ipv4(6, tcp(40010, 3389, 5, psh, CR), frag=0x2000),  # first fragment (more follow)
        ipv4(6, tcp(40011, 3389, 5, psh, CR), frag=0x0010),  # a later fragment
        ipv4(17, udp(53000, 53, b"\x12\x34\x01\x00" + bytes(30))),
        ipv4(17, udp(50001, 3389, rdp_udp_syn)),
        ipv4(17, udp(50002, 3389, rdp_udp_syn, ulen=12)),  # UDP length shorter than the data
        ipv4(17, udp(50003, 3389, rdp_udp_syn, ulen=3)),  # UDP length below 8
        ipv4(17, udp(50004, 3389, rdp_udp_syn), total=24),  # total inside the UDP header
        ipv4(1, b"\x08\x00" + bytes(40)),  # ICMP
        ipv4(6, tcp(50000, 3389, 120, fin)),
        ipv4(6, tcp(3389, 50000, 920, rst), b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x01"),
        ipv4(6, tcp(50000, 3389, 100, syn)),  # the ports reused by a new connection
    ]


def ethernet(ip: bytes, etype: bytes = b"\x08\x00") -> bytes:
    return bytes(6) + b"\x02" * 6 + etype + ip


def link_frames(linktype: int) -> list[bytes]:
    ips = shapes()
    v6 = struct.pack("!IHBB16s16s", 0x60000000, 20, 6, 64, bytes(15) + b"\x01", bytes(15) + b"\x02")
    v6 += tcp(1, 2, 3, 0x18)
    if linktype == 1:
        return (
            [ethernet(ip) for ip in ips]
            + [
                bytes(12) + b"\x81\x00\x00\x05\x08\x00" + ips[3],  # 802.1Q tag
                ethernet(v6, b"\x86\xdd"),
                ethernet(b"\x00\x01" + bytes(26), b"\x08\x06"),  # ARP
                ethernet(ips[3])[:30],  # cut inside the IP header
                ethernet(b"\x46" + ips[3][1:]),  # IHL 6 without the option bytes
                ethernet(b"\x55" + ips[3][1:]),  # version 5
            ]
        )
    if linktype == 113:  # Linux cooked v1: protocol at 14
        return [bytes(14) + b"\x08\x00" + ip for ip in ips] + [bytes(14) + b"\x86\xdd" + v6]
    if linktype == 276:  # Linux cooked v2: protocol at 0
        return [b"\x08\x00" + bytes(18) + ip for ip in ips] + [b"\x86\xdd" + bytes(18) + v6]
    return [*ips, v6]  # raw IP: the general path for every record


@pytest.mark.parametrize("linktype", [1, 113, 276, 101])
def test_every_header_shape_on_every_link_type(linktype: int) -> None:
    frames = link_frames(linktype)
    log, stats, warnings, records, cut = same(pcap(frames, linktype))
    assert records == len(frames) and warnings == [] and cut == 0
    assert stats["tcp"] > 10 and stats["udp"] >= 4
    conns = [e[1] for e in log if e[0] == "conn"]
    assert [(c["client_port"], c["requested"], c["selected"]) for c in conns][:1] == [(50000, 3, 2)]
    reached = {e[2][3] for e in log if e[0] == "tcp"}  # source ports that reached feed_tcp
    assert 50000 in reached and 40001 in reached  # a SYN-started flow; a first byte 0x16
    assert 40000 not in reached and 40003 not in reached  # mid-stream HTTP, a bare ACK


def test_snaplen_cut_big_endian_trailing_bytes_and_one_byte_reads() -> None:
    frames = link_frames(1)
    for cut in (0, 1, 7, 30):
        data = pcap(frames, snaplen=96, cut=cut)
        _, _, warnings, records, snap = same(data)
        assert records == len(frames) and snap == (len(frames[::3]) if cut else 0)
    same(pcap(frames, big_endian=True))
    data = pcap(frames)
    for tail in (b"\x01", bytes(15), struct.pack("<IIII", 1, 2, 40, 40) + bytes(20)):
        _, _, warnings, records, _ = same(data + tail)
        assert records == len(frames) and len(warnings) == 1 and "truncated" in warnings[0]
    _, stats, warnings, records, _ = same(data + bytes(16))  # one empty record: no damage
    assert records == len(frames) + 1 and warnings == [] and stats["skip_truncated"] >= 1
    bad = data + struct.pack("<IIII", 1, 2, 1 << 30, 1 << 30) + bytes(64)
    _, _, warnings, _, _ = same(bad)
    assert "corrupt record header" in warnings[0]

    class OneByte(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(1 if size is None or size < 0 else min(size, 1))

    assert same(data, OneByte) == same(data)
    assert same(data + b"\x07" * 9, OneByte)[2] == same(data + b"\x07" * 9)[2]


def test_zeek_captures_and_both_big_shapes(tmp_path: Path) -> None:
    conns = 0
    for path in seeds.capture_files():
        log = same(path.read_bytes())[0]
        conns += sum(1 for e in log if e[0] == "conn")
    assert conns >= len(seeds.capture_files())
    for write in (write_big_pcap, write_busy_pcap):
        path = tmp_path / f"{write.__name__}.pcap"
        summary = write(path, 30_000, 12, ([CR], [CC]))
        log = same(path.read_bytes())[0]
        found = {(e[1]["client"], e[1]["client_port"], e[1]["server"], e[1]["server_port"])
                 for e in log if e[0] == "conn" and e[1]["transport"] == "tcp"}  # fmt: skip
        placed = {tuple(c.values()) for c in summary["rdp_connections"]}
        assert found == placed and len(placed) == 12  # (the small table splits some in parts)


def test_mutated_captures_read_the_same_both_ways() -> None:
    rng = random.Random(1212)
    bases = [pcap(link_frames(lt), lt) for lt in (1, 113, 276)]
    bases += [p.read_bytes() for p in seeds.capture_files()[:4]]
    for _ in range(150):
        data = rng.choice(bases)
        bodies = captures.records(data)
        if rng.random() < 0.8 and bodies:  # inside packets, lengths kept
            for _ in range(rng.randint(1, 4)):
                offset, length = rng.choice(bodies)
                body = mutate(rng, data[offset : offset + length])[:length].ljust(length, b"\0")
                data = data[:offset] + body + data[offset + length :]
        else:  # anywhere, record headers too
            data = data[:24] + mutate(rng, data[24:])
        same(data)


def test_a_reader_feeds_once_and_pcapng_takes_the_general_path() -> None:
    reader = CaptureReader(io.BytesIO(pcap(link_frames(1))))
    FlowTable().process(reader)
    with pytest.raises(CaptureError, match="already read"):
        FlowTable().process(reader)
    frames = [(1_700_000_000.0 + i, f) for i, f in enumerate(link_frames(1))]
    ng = CaptureReader(io.BytesIO(pcapng_bytes(frames)))
    with pytest.raises(CaptureError, match="not a classic pcap"):
        ng.pcap_start()
    table = FlowTable(RdpHandler(lambda c: None))
    table.process(ng)
    assert ng.records == len(frames) and table.stats["tcp"] > 10


def test_udp_syn_mtu_precheck_keeps_the_parsers_verdict() -> None:
    """udp._syn tests the MTUs before parsing; on every prefix (the datagram fed one byte at a
    time), with trailing bytes and under mutation it answers as parse_syn + mtus_in_range."""
    from rdprobe.capture.udp import _syn
    from rdprobe.protocol import rdpudp
    from rdprobe.protocol.errors import ProtocolError

    def reference(data: bytes) -> rdpudp.RdpUdpSyn | None:
        if len(data) < 16 or not data[7] & rdpudp.Flag.RDPUDP_FLAG_SYN:
            return None
        try:
            syn = rdpudp.parse_syn(data)
        except ProtocolError:
            return None
        return syn if syn.mtus_in_range else None

    whole = [rdpudp.build_syn(), rdpudp.build_syn(up_mtu=1132, down_mtu=1232),
             rdpudp.build_syn_ack(rdpudp.parse_syn(rdpudp.build_syn()))]  # fmt: skip
    assert all(_syn(d) is not None and _syn(d) == reference(d) for d in whole)
    rng = random.Random(12)
    for d in whole:
        for cut in range(len(d) + 1):
            assert _syn(d[:cut]) == reference(d[:cut])
        assert _syn(d + b"\x00" * 7) == reference(d + b"\x00" * 7)
        for _ in range(400):
            m = mutate(rng, d)
            assert _syn(m) == reference(m)
    for _ in range(400):  # random datagrams with the SYN bit set: mostly out of range
        m = bytes(rng.randrange(256) for _ in range(rng.randrange(16, 40)))
        m = m[:7] + bytes([m[7] | 1]) + m[8:]
        assert _syn(m) == reference(m)
