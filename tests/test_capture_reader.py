"""Capture records (pcap / pcapng / gzip), link-layer decoding and broken input."""

from __future__ import annotations

import glob
import gzip
import io
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from rdprobe.capture.flows import FlowHandler, FlowTable
from rdprobe.capture.linklayer import TCP, UDP, Packet, Skip, decode
from rdprobe.capture.reassembly import StreamData
from rdprobe.capture.records import CaptureError, CaptureReader

# Zeek's test captures (zeek/zeek testing/btest/Traces/rdp, see /work/shared/vectors/README.md):
# the project's copy if the lead has made one, else the shared read-only one.
_HERE = Path(__file__).resolve().parent.parent / "captures" / "zeek"
ZEEK = _HERE if list(_HERE.glob("*.pcap")) else Path("/work/shared/captures/zeek")
A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


# -- frame builders -------------------------------------------------------------------------------


def tcp_seg(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 1000, 0, 0) + payload


def udp_dgram(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(body: bytes, proto: int = TCP, src: bytes = A4, dst: bytes = B4, *, frag: int = 0x4000,
         options: bytes = b"") -> bytes:  # fmt: skip
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(body), 1, frag, 64, proto, 0,
                      src, dst)  # fmt: skip
    return hdr + options + body


def ipv6(body: bytes, proto: int = TCP, ext: bytes = b"", first_next: int | None = None) -> bytes:
    nxt = proto if first_next is None else first_next
    return (
        struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(body), nxt, 64, A6, B6) + ext + body
    )


def ether(ip: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    etype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    tags = b"".join(struct.pack("!HH", tpid, 100) for tpid in vlans)
    return b"\x02" * 6 + b"\x04" * 6 + tags + etype.to_bytes(2, "big") + ip


def link(linktype: int, ip: bytes) -> bytes:
    v6 = ip[0] >> 4 == 6
    etype = (0x86DD if v6 else 0x0800).to_bytes(2, "big")
    if linktype == 1:
        return ether(ip)
    if linktype == 113:
        return struct.pack("!HHH8s", 0, 1, 6, b"\x02" * 8) + etype + ip
    if linktype == 276:
        return etype + b"\x00\x00" + struct.pack("!IHBB8s", 1, 1, 0, 6, b"\x02" * 8) + ip
    if linktype == 0:
        return struct.pack("<I", 30 if v6 else 2) + ip
    if linktype == 108:
        return struct.pack(">I", 24 if v6 else 2) + ip
    return ip  # raw IP link types


def pcap_file(frames: list[bytes], linktype: int = 1, *, endian: str = "<", ns: bool = False,
              ts: float = 1_700_000_000.25, snaplen: int = 65535) -> bytes:  # fmt: skip
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for i, frame in enumerate(frames):
        sec = int(ts) + i
        frac = round((ts - int(ts)) * (1e9 if ns else 1e6))
        cap = frame[:snaplen]
        out.append(struct.pack(endian + "IIII", sec, frac, len(cap), len(frame)) + cap)
    return b"".join(out)


def ng_block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def ng_shb(e: str = "<") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def ng_idb(linktype: int, tsresol: int | None = None, tsoffset: int = 0, e: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts += struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3
    if tsoffset:
        opts += struct.pack(e + "HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack(e + "HH", 0, 0)
    return ng_block(1, struct.pack(e + "HHI", linktype, 0, 65535) + opts, e)


def ng_epb(iface: int, units: int, frame: bytes, e: str = "<") -> bytes:
    body = struct.pack(e + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
    return ng_block(6, body + frame, e)


def syn_frame(linktype: int = 1, v6: bool = False, payload: bytes = b"") -> bytes:
    seg = tcp_seg(50000, 3389, 1000, 0, 0x02, payload)
    return link(linktype, ipv6(seg) if v6 else ipv4(seg))


# -- link layer -----------------------------------------------------------------------------------


# LINKTYPE_IPV4 (228) and LINKTYPE_IPV6 (229) carry only their own IP version
LINK_CASES = [
    (lt, v6) for lt in (1, 113, 276, 0, 108, 101, 12, 14, 228, 229) for v6 in (False, True)
    if (lt, v6) not in ((228, True), (229, False))
]  # fmt: skip


@pytest.mark.parametrize(("linktype", "v6"), LINK_CASES)
def test_decode_every_link_type(linktype: int, v6: bool) -> None:
    frame = link(linktype, (ipv6 if v6 else ipv4)(tcp_seg(1234, 3389, 77, 88, 0x18, b"\x03\x00hi")))
    pkt = decode(linktype, frame)
    assert isinstance(pkt, Packet)
    assert (pkt.src, pkt.dst) == ((A6, B6) if v6 else (A4, B4))
    assert (pkt.proto, pkt.sport, pkt.dport, pkt.seq, pkt.ack, pkt.flags, pkt.window) == (
        TCP,
        1234,
        3389,
        77,
        88,
        0x18,
        1000,
    )
    assert pkt.payload == b"\x03\x00hi" and pkt.missing == 0


def test_bsd_null_in_big_endian_host_order() -> None:
    frame = struct.pack(">I", 2) + ipv4(tcp_seg(1, 2, 3, 4, 0x10, b"x"))
    assert decode(0, frame).payload == b"x"


@pytest.mark.parametrize("vlans", [(0x8100,), (0x88A8, 0x8100), (0x9100, 0x8100, 0x8100)])
def test_vlan_tags(vlans: tuple[int, ...]) -> None:
    pkt = decode(1, ether(ipv4(tcp_seg(5, 6, 7, 8, 0x18, b"vlan")), vlans))
    assert isinstance(pkt, Packet) and pkt.payload == b"vlan" and pkt.dport == 6


def test_ethernet_padding_is_stripped_and_options_skipped() -> None:
    ip = ipv4(tcp_seg(5, 6, 7, 8, 0x10, b"ab"), options=b"\x01\x01\x01\x00")
    frame = ether(ip) + b"\x00" * 20
    pkt = decode(1, frame)
    assert pkt.payload == b"ab" and pkt.missing == 0


def test_snaplen_cut_counts_missing_bytes() -> None:
    frame = ether(ipv4(tcp_seg(5, 6, 7, 8, 0x10, bytes(range(100)))))
    pkt = decode(1, frame[:70])
    assert pkt.payload == bytes(range(16)) and pkt.missing == 84


def test_fragments() -> None:
    first = ipv4(tcp_seg(5, 6, 7, 8, 0x10, b"first"), frag=0x2000)  # MF, offset 0
    later = ipv4(b"rest of it", frag=0x0003)
    assert decode(101, first).payload == b"first"
    assert decode(101, later) is Skip.FRAGMENT
    frag6_later = struct.pack("!BBHI", TCP, 0, 0x0009, 1)
    assert decode(101, ipv6(b"x" * 20, ext=frag6_later, first_next=44)) is Skip.FRAGMENT
    frag6_first = struct.pack("!BBHI", TCP, 0, 0x0001, 1)
    pkt = decode(101, ipv6(tcp_seg(1, 2, 3, 4, 0x10, b"f"), ext=frag6_first, first_next=44))
    assert pkt.payload == b"f"


def test_ipv6_extension_headers() -> None:
    hop = bytes([60, 0]) + b"\x01\x04\x00\x00\x00\x00"  # hop-by-hop -> destination options
    dst = bytes([TCP, 1]) + b"\x01\x0c" + b"\x00" * 12
    pkt = decode(101, ipv6(tcp_seg(9, 3389, 1, 2, 0x18, b"\x03\x00"), ext=hop + dst, first_next=0))
    assert isinstance(pkt, Packet) and pkt.dport == 3389 and pkt.payload == b"\x03\x00"


def test_udp_and_other_protocols() -> None:
    pkt = decode(1, ether(ipv4(udp_dgram(3389, 5000, b"\xff" * 12), UDP)) + b"\x00" * 4)
    assert pkt.proto == UDP and pkt.payload == b"\xff" * 12 and (pkt.seq, pkt.flags) == (0, 0)
    assert decode(1, ether(ipv4(b"\x08\x00" + b"\x00" * 6, 1))) is Skip.PROTOCOL
    assert decode(1, b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28) is Skip.NOT_IP
    assert decode(147, b"anything") is Skip.LINKTYPE


def test_decode_never_raises_on_garbage() -> None:
    rng = random.Random(6)
    frames = [link(lt, ipv4(tcp_seg(1, 2, 3, 4, 0x18, b"p" * 30))) for lt in (1, 113, 276, 0, 101)]
    frames.append(ether(ipv6(tcp_seg(1, 2, 3, 4, 0x18, b"p" * 30))))
    for lt, frame in zip((1, 113, 276, 0, 101, 1), frames, strict=True):
        for cut in range(len(frame) + 1):
            assert isinstance(decode(lt, frame[:cut]), Packet | Skip)
        for _ in range(300):
            mutated = bytearray(frame)
            for _ in range(rng.randrange(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            assert isinstance(decode(lt, bytes(mutated)), Packet | Skip)


# -- records --------------------------------------------------------------------------------------


def read_all(data: bytes) -> tuple[list, CaptureReader]:
    reader = CaptureReader(io.BytesIO(data))
    return list(reader), reader


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_pcap_byte_orders_and_resolution(endian: str, ns: bool) -> None:
    frames = [syn_frame(), syn_frame(payload=b"abc")]
    recs, reader = read_all(pcap_file(frames, 1, endian=endian, ns=ns, ts=1_700_000_000.123456))
    assert reader.format == "pcap" and reader.linktypes == [1] and not reader.warnings
    assert [r[2] for r in recs] == frames and [r[1] for r in recs] == [1, 1]
    assert recs[1][0] == pytest.approx(1_700_000_001.123456, abs=1e-6)
    assert recs[0][3] == len(frames[0])


def test_pcap_snaplen_cut_records() -> None:
    frame = syn_frame(payload=b"x" * 200)
    recs, reader = read_all(pcap_file([frame], snaplen=96))
    assert recs[0][2] == frame[:96] and recs[0][3] == len(frame) and reader.snaplen_cut == 1


def test_pcapng_two_interfaces_resolutions_and_unknown_blocks() -> None:
    f1, f2 = syn_frame(1), syn_frame(101, v6=True)
    data = (
        ng_shb()
        + ng_idb(1)  # default microseconds
        + ng_block(0x0BAD, b"unknown block body")
        + ng_idb(101, tsresol=9, tsoffset=100)  # nanoseconds, +100 s
        + ng_epb(0, 1_700_000_000_500_000, f1)
        + ng_epb(1, 1_600_000_000_250_000_000, f2)
        + ng_block(3, struct.pack("<I", len(f1)) + f1)  # simple packet block, interface 0
        + ng_block(5, b"\x00" * 8)  # interface statistics: skipped
    )
    recs, reader = read_all(data)
    assert reader.format == "pcapng" and not reader.warnings
    assert [(r[1], r[2]) for r in recs] == [(1, f1), (101, f2), (1, f1)]
    assert recs[0][0] == pytest.approx(1_700_000_000.5)
    assert recs[1][0] == pytest.approx(1_600_000_100.25)
    assert isinstance(decode(recs[1][1], recs[1][2]), Packet)


def test_pcapng_big_endian_binary_resolution_and_two_sections() -> None:
    f1 = syn_frame(1)
    section_be = ng_shb(">") + ng_idb(1, tsresol=0x80 | 10, e=">") + ng_epb(0, 1024 * 5, f1, ">")
    section_le = ng_shb() + ng_idb(113) + ng_epb(0, 0, syn_frame(113))
    recs, reader = read_all(section_be + section_le)
    assert not reader.warnings
    assert [(r[0], r[1]) for r in recs] == [(5.0, 1), (0.0, 113)]


def test_scapy_written_files_read_identically(tmp_path: Path) -> None:
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter, RawPcapWriter

    frames = [syn_frame(), syn_frame(payload=b"\x03\x00\x00\x13")]
    with RawPcapWriter(str(tmp_path / "s.pcap"), linktype=1) as writer:
        for frame in frames:
            writer.write(frame)
    with PcapNgWriter(str(tmp_path / "s.pcapng")) as writer:
        for frame in frames:
            writer.write(Ether(frame))
    for name in ("s.pcap", "s.pcapng"):
        with CaptureReader(tmp_path / name) as reader:
            assert [r[2] for r in reader] == frames and not reader.warnings
            assert reader.format == name[2:]


def test_gzip_pcap_and_pcapng(tmp_path: Path) -> None:
    frames = [syn_frame(), syn_frame(payload=b"z" * 3000)]
    for name, data in (("a.pcap.gz", pcap_file(frames)),
                       ("b.pcapng.gz", ng_shb() + ng_idb(1) + ng_epb(0, 0, frames[0])
                        + ng_epb(0, 1, frames[1]))):  # fmt: skip
        path = tmp_path / name
        path.write_bytes(gzip.compress(data))
        with CaptureReader(path) as reader:
            assert [r[2] for r in reader] == frames
            assert reader.compression == "gzip" and not reader.warnings
        with open(path, "rb") as fh:  # a file object, read without seeking
            assert [r[2] for r in CaptureReader(fh)] == frames


def test_large_records_cross_chunk_boundaries() -> None:
    frames = [syn_frame(payload=bytes([i % 251]) * (1000 + i * 37)) for i in range(1500)]
    recs, reader = read_all(pcap_file(frames))
    assert [r[2] for r in recs] == frames and reader.records == 1500


# -- broken input ---------------------------------------------------------------------------------


def test_empty_and_non_capture_files(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("this is not a capture\n" * 5)
    for name, word in (("empty.pcap", "empty"), ("notes.txt", "not a pcap")):
        with pytest.raises(CaptureError) as info:
            CaptureReader(tmp_path / name)
        assert word in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CaptureError, match="cannot read"):
        CaptureReader(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match="cannot read"):
        CaptureReader(tmp_path)  # a directory


def check_truncations(data: bytes, expected: list[bytes], *, compress: bool = False) -> None:
    for cut in range(len(data)):
        blob = gzip.compress(data)[:cut] if compress else data[:cut]
        try:
            reader = CaptureReader(io.BytesIO(blob))
        except CaptureError as exc:
            assert "\n" not in str(exc)
            continue
        got = [r[2] for r in reader]
        assert got == expected[: len(got)]
        if len(got) < len(expected) and cut:
            assert reader.warnings or (not compress and cut in _boundaries(data)), cut
        for warning in reader.warnings:
            assert "\n" not in warning


def _boundaries(data: bytes) -> set[int]:
    """Offsets at which a pcap ends cleanly between records."""
    out, pos = {24}, 24
    while pos + 16 <= len(data):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        out.add(pos)
    return out


def test_truncated_files_at_every_offset() -> None:
    frames = [syn_frame(payload=b"a" * 40), syn_frame(payload=b"b" * 10), syn_frame()]
    check_truncations(pcap_file(frames), frames)
    blocks = [ng_shb(), ng_idb(1)] + [ng_epb(0, i, f) for i, f in enumerate(frames)]
    ng = b"".join(blocks)
    ends = {sum(len(b) for b in blocks[:i]) for i in range(1, len(blocks) + 1)}
    for cut in range(len(ng)):
        try:
            reader = CaptureReader(io.BytesIO(ng[:cut]))
        except CaptureError:
            continue
        got = [r[2] for r in reader]
        assert got == frames[: len(got)]
        assert bool(reader.warnings) == (cut not in ends), cut
    gz = gzip.compress(pcap_file(frames))
    for cut in range(0, len(gz), 3):
        try:
            reader = CaptureReader(io.BytesIO(gz[:cut]))
        except CaptureError:
            continue
        got = [r[2] for r in reader]
        assert got == frames[: len(got)]
        assert reader.warnings  # a gzip stream cut anywhere is reported


def test_corrupt_record_length_gives_partial_result() -> None:
    frames = [syn_frame(), syn_frame(payload=b"q"), syn_frame()]
    data = bytearray(pcap_file(frames))
    second = 24 + 16 + len(frames[0])
    struct.pack_into("<I", data, second + 8, 0x7FFFFFF0)
    recs, reader = read_all(bytes(data))
    assert [r[2] for r in recs] == frames[:1]
    assert len(reader.warnings) == 1 and "corrupt record header" in reader.warnings[0]
    ng = bytearray(ng_shb() + ng_idb(1) + ng_epb(0, 0, frames[0]) + ng_epb(0, 0, frames[1]))
    struct.pack_into("<I", ng, len(ng) - len(ng_epb(0, 0, frames[1])) + 4, 13)
    recs, reader = read_all(bytes(ng))
    assert [r[2] for r in recs] == frames[:1] and "bad block length" in reader.warnings[0]


def test_corrupt_gzip_stream_is_a_warning() -> None:
    gz = bytearray(gzip.compress(pcap_file([syn_frame()] * 2000)))
    gz[len(gz) // 2 : len(gz) // 2 + 16] = b"\xff" * 16
    recs, reader = read_all(bytes(gz))
    assert len(recs) < 2000 and reader.warnings


# -- flows over real captures ---------------------------------------------------------------------


class FirstBytes(FlowHandler):
    def __init__(self) -> None:
        self.first: dict[int, bytes] = {}
        self.flows: list = []
        self.udp: list[Packet] = []

    def classify(self, flow, direction, data):
        return direction == 0 or None

    def on_stream(self, flow, direction, event):
        if direction == 0 and isinstance(event, StreamData) and id(flow) not in self.first:
            self.first[id(flow)] = event.data

    def on_end(self, flow):
        self.flows.append(flow)

    def on_udp(self, ts, packet):
        self.udp.append(packet)


ZEEK_FILES = sorted(glob.glob(str(ZEEK / "*.pcap")))


@pytest.mark.skipif(not ZEEK_FILES, reason="zeek captures not present")
@pytest.mark.parametrize("path", ZEEK_FILES, ids=os.path.basename)
def test_zeek_captures(path: str) -> None:
    handler = FirstBytes()
    table = FlowTable(handler)
    with CaptureReader(path) as reader:
        table.process(reader)
        assert not reader.warnings and reader.records > 0
    assert table.records == reader.records
    assert table.stats["skip_truncated"] == 0
    name = os.path.basename(path)
    if name.startswith("rdpeudp"):
        syn = handler.udp[0].payload  # RDPUDP_FEC_HEADER, MS-RDPEUDP 2.2.2.1: uFlags has SYN
        assert struct.unpack_from("!IHH", syn)[0] == 0xFFFFFFFF
        assert struct.unpack_from("!IHH", syn)[2] & 0x0001 and len(syn) >= 1132
        return
    assert handler.flows and all(f.server_port == 3389 for f in handler.flows)
    for flow in handler.flows:
        first = handler.first[id(flow)]
        assert flow.role_basis == "syn" and flow.syn_ts is not None
        assert flow.handshake_rtt is not None and flow.handshake_rtt >= 0
        assert flow.streams is not None and flow.streams[0].gaps == 0
        if name != "rdp-invalid-length.pcap":
            assert first[:2] == b"\x03\x00" and first[5] == 0xE0  # TPKT + X.224 CR
            assert struct.unpack_from("!H", first, 2)[0] <= len(first)
        else:
            assert len(first) == 183  # tshark: frame 4, Len=183


class Everything(FlowHandler):
    def classify(self, flow, direction, data):
        return True


@pytest.mark.skipif(not ZEEK_FILES, reason="zeek captures not present")
def test_flow_table_survives_mutated_and_shuffled_real_traffic() -> None:
    rng = random.Random(11)
    with CaptureReader(ZEEK / "rdp-x509.pcap") as reader:
        records = list(reader)
    for round_ in range(60):
        table = FlowTable(Everything(), max_flows=4, idle_timeout=1.0)
        recs = records[:]
        if round_ % 2:
            rng.shuffle(recs)
        for ts, linktype, data, _orig in recs:
            frame = bytearray(data)
            for _ in range(rng.randrange(0, 4)):
                frame[rng.randrange(len(frame))] = rng.randrange(256)
            table.feed(
                ts + rng.uniform(-5, 5), linktype, bytes(frame[: rng.randrange(len(frame) + 1)])
            )
        table.finish()
        assert table.active == 0 and table.records == len(recs)


class Streams(FlowHandler):
    """Keep every byte of every flow, per direction, with gaps marked."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, int, int], bytearray] = {}
        self.gaps: dict[tuple[str, int, int], bytearray] = {}  # 1 where a byte is a gap

    def classify(self, flow, direction, data):
        return True

    def on_stream(self, flow, direction, event):
        key = (flow.client_address, flow.client_port, direction)
        buf = self.data.setdefault(key, bytearray())
        mask = self.gaps.setdefault(key, bytearray())
        if isinstance(event, StreamData):
            buf += event.data
            mask += b"\x00" * len(event.data)
        else:
            buf += b"\x00" * event.length
            mask += b"\x01" * event.length


def tshark_follow(path: str, index: int) -> tuple[str, bytes, bytes] | None:
    out = subprocess.run(
        ["tshark", "-r", path, "-q", "-z", f"follow,tcp,raw,{index}"],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    node0 = next((ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("Node 0:")), "")
    if not node0 or node0.startswith(":"):
        return None
    lines = out.split("Node 1:", 1)[1].splitlines()[1:]
    sent = bytearray()
    received = bytearray()
    for line in lines:
        if line.startswith("==="):
            break
        (received if line.startswith("\t") else sent).extend(bytes.fromhex(line.strip()))
    return node0, bytes(sent), bytes(received)


@pytest.mark.skipif(not ZEEK_FILES or not shutil.which("tshark"), reason="needs tshark + zeek")
@pytest.mark.parametrize("name", ["rdp-to-ssl.pcap", "rdp-proprietary-encryption.pcap",
                                  "rdp-x509.pcap", "rdp-no-cookie-mstshash.pcap"])  # fmt: skip
def test_streams_equal_tshark_follow(name: str) -> None:
    path = str(ZEEK / name)
    handler = Streams()
    with CaptureReader(path) as reader:
        FlowTable(handler).process(reader)
    compared = 0
    for index in range(8):
        followed = tshark_follow(path, index)
        if followed is None:
            break
        node0, sent, received = followed
        host, port = node0.rsplit(":", 1)
        assert bytes(handler.data.get((host, int(port), 0), b"")) == sent
        assert bytes(handler.data.get((host, int(port), 1), b"")) == received
        compared += 1
    assert compared >= 1


@pytest.mark.skipif(not ZEEK_FILES, reason="zeek captures not present")
def test_snaplen_cut_capture_reports_gaps_not_guesses() -> None:
    with CaptureReader(ZEEK / "rdp-x509.pcap") as reader:
        frames = [r[2] for r in reader]
    full, cut = Streams(), Streams()
    for handler, snaplen in ((full, 65535), (cut, 80)):
        with CaptureReader(io.BytesIO(pcap_file(frames, snaplen=snaplen))) as reader:
            FlowTable(handler).process(reader)
            assert reader.snaplen_cut == sum(len(f) > snaplen for f in frames)
    assert full.data.keys() == cut.data.keys()
    for key, data in full.data.items():
        assert len(cut.data[key]) == len(data) and 1 not in full.gaps[key]
        mask = cut.gaps[key]
        assert all(m or c == d for c, d, m in zip(cut.data[key], data, mask, strict=True))
    assert sum(sum(mask) for mask in cut.gaps.values()) > 1000


def test_reader_reads_once() -> None:
    reader = CaptureReader(io.BytesIO(pcap_file([syn_frame()])))
    assert len(list(reader)) == 1
    with pytest.raises(CaptureError, match="already read"):
        list(reader)
