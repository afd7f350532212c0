#!/usr/bin/env python3
"""Write a large synthetic pcap: mostly ordinary TCP/UDP traffic with K RDP handshakes placed in it.

File only, no network traffic. Ethernet + IPv4, microsecond pcap, 10,000 packets per capture second.
Other TCP flows look like HTTP/TLS exchanges on ports 80/443/22/8080 (SYN, SYN+ACK, ACK, data both
ways, FIN, FIN, ACK); UDP is DNS-like request/answer pairs. Each RDP connection is a complete TCP
connection to ``rdp_port`` whose payloads are ``client_bytes_list[i]`` / ``server_bytes_list[i]`` sent
alternately (segments larger than 1460 bytes are split), then closed with FINs.

    python3 scripts/make_big_pcap.py OUT.pcap --packets 1000000 --rdp 300 [--gzip] [--seed 1]
        [--shape complete|busy]

``--shape busy`` writes the busy-link shape instead: nearly every packet is a flow of its own seen
mid-stream (one or two packets), with complete RDP connections on 3389 and non-standard ports.

prints a JSON summary (packets written, the RDP connections' client/server endpoints).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import struct
import sys
from collections.abc import Sequence
from pathlib import Path

# X.224 Connection Request with RDP_NEG_REQ (PROTOCOL_SSL | PROTOCOL_HYBRID), MS-RDPBCGR 2.2.1.1.
DEFAULT_CR = bytes.fromhex("030000130ee000000000000100080003000000")
# X.224 Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_HYBRID, MS-RDPBCGR 2.2.1.2.
DEFAULT_CC = bytes.fromhex("030000130ed000001234000201080002000000")
MSS = 1460

_ip_hdr = struct.Struct("!BBHHHBBH4s4s")
_tcp_hdr = struct.Struct("!HHIIBBHHH")
_udp_hdr = struct.Struct("!HHHH")
_rec_hdr = struct.Struct("<IIII")
ETH = bytes.fromhex("0200000000020200000000010800")


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack("!10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip(src: bytes, dst: bytes, proto: int, body: bytes) -> bytes:
    hdr = _ip_hdr.pack(0x45, 0, 20 + len(body), 0, 0x4000, 64, proto, 0, src, dst)
    return ETH + hdr[:10] + _checksum(hdr).to_bytes(2, "big") + hdr[12:] + body


def tcp_frame(src, sport, dst, dport, seq, ack, flags, payload=b""):
    body = _tcp_hdr.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0)
    return _ip(src, dst, 6, body + payload)


def udp_frame(src, sport, dst, dport, payload):
    return _ip(src, dst, 17, _udp_hdr.pack(sport, dport, 8 + len(payload), 0) + payload)


def tcp_connection(
    rng: random.Random,
    client: bytes,
    cport: int,
    server: bytes,
    sport: int,
    client_msgs: Sequence[bytes],
    server_msgs: Sequence[bytes],
) -> list[bytes]:
    """Frames of a whole connection: handshake, alternating messages, FIN exchange."""
    cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)
    frames = [
        tcp_frame(client, cport, server, sport, cseq, 0, 0x02),
        tcp_frame(server, sport, client, cport, sseq, cseq + 1, 0x12),
        tcp_frame(client, cport, server, sport, cseq + 1, sseq + 1, 0x10),
    ]
    cseq += 1
    sseq += 1
    for i in range(max(len(client_msgs), len(server_msgs))):
        for msgs, src, sp, dst, dp, is_client in (
            (client_msgs, client, cport, server, sport, True),
            (server_msgs, server, sport, client, cport, False),
        ):
            if i >= len(msgs):
                continue
            data = msgs[i]
            for off in range(0, len(data), MSS):
                seg = data[off : off + MSS]
                if is_client:
                    frames.append(tcp_frame(src, sp, dst, dp, cseq, sseq, 0x18, seg))
                    cseq += len(seg)
                else:
                    frames.append(tcp_frame(src, sp, dst, dp, sseq, cseq, 0x18, seg))
                    sseq += len(seg)
    frames.append(tcp_frame(client, cport, server, sport, cseq, sseq, 0x11))
    frames.append(tcp_frame(server, sport, client, cport, sseq, cseq + 1, 0x11))
    frames.append(tcp_frame(client, cport, server, sport, cseq + 1, sseq + 1, 0x10))
    return frames


def write_big_pcap(
    path: str | Path,
    n_packets: int = 1_000_000,
    rdp_handshakes: int = 300,
    rdp_exchange: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
    *,
    seed: int = 1,
    concurrent: int = 1000,
    rdp_port: int = 3389,
    compress: bool = False,
) -> dict:
    """Write the capture; return a summary with the RDP connections' endpoints."""
    rng = random.Random(seed)
    client_msgs, server_msgs = rdp_exchange or ([DEFAULT_CR], [DEFAULT_CC])
    blob = bytes(rng.getrandbits(8) for _ in range(4096)).replace(b"\x03\x00", b"\x17\x03")
    http_req = b"GET /index.html HTTP/1.1\r\nHost: example.test\r\n\r\n"
    active: list[list] = []  # [frames, next index, is_rdp]
    rdp: list[dict] = []
    rdp_every = max(1, n_packets // (rdp_handshakes + 1)) if rdp_handshakes else 0
    host = 0

    def other_flow() -> list[bytes]:
        nonlocal host
        host += 1
        client = bytes((10, 1 + (host >> 16) % 200, (host >> 8) & 255, host & 255))
        server = bytes((192, 168, rng.randrange(1, 255), rng.randrange(1, 255)))
        cport, sport = rng.randrange(20000, 65000), rng.choice((80, 443, 22, 8080))
        n = rng.randrange(1, 6)
        cm = [http_req] + [blob[: rng.randrange(1, 600)] for _ in range(n - 1)]
        sm = [blob[rng.randrange(0, 100) :][: rng.randrange(100, 3000)] for _ in range(n)]
        return tcp_connection(rng, client, cport, server, sport, cm, sm)

    def dns_pair() -> list[bytes]:
        nonlocal host
        host += 1
        client = bytes((10, 2 + (host >> 16) % 200, (host >> 8) & 255, host & 255))
        resolver = bytes((192, 0, 2, 53))
        port = rng.randrange(20000, 65000)
        q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x04test\x00\x00\x01\x00\x01"
        return [udp_frame(client, port, resolver, 53, q), udp_frame(resolver, 53, client, port, q)]

    opener = gzip.open if compress else open
    written = 0
    ts0 = 1_700_000_000
    with opener(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        chunk: list[bytes] = []
        while written < n_packets:
            if rdp_every and written % rdp_every == 0 and len(rdp) < rdp_handshakes and written:
                n = len(rdp) + 1
                client = bytes((172, 16, (n >> 8) & 255, n & 255))
                server = bytes((172, 31, 0, 1 + n % 50))
                cport = rng.randrange(49152, 65535)
                frames = tcp_connection(
                    rng, client, cport, server, rdp_port, client_msgs, server_msgs
                )
                rdp.append(
                    {
                        "client": ".".join(map(str, client)),
                        "client_port": cport,
                        "server": ".".join(map(str, server)),
                        "server_port": rdp_port,
                    }
                )
                active.append([frames, 0, True])
            while len(active) < concurrent:
                active.append([dns_pair() if rng.random() < 0.2 else other_flow(), 0, False])
            slot = rng.randrange(len(active))
            entry = active[slot]
            frames, i, _is_rdp = entry
            frame = frames[i]
            entry[1] = i + 1
            if i + 1 == len(frames):
                active[slot] = active[-1]
                active.pop()
            ts = ts0 + written // 10000
            usec = (written % 10000) * 100
            chunk.append(_rec_hdr.pack(ts, usec, len(frame), len(frame)) + frame)
            written += 1
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        # finish open RDP connections so every placed handshake is complete in the file
        for frames, i, is_rdp in active:
            if is_rdp:
                for frame in frames[i:]:
                    ts = ts0 + written // 10000
                    usec = (written % 10000) * 100
                    chunk.append(_rec_hdr.pack(ts, usec, len(frame), len(frame)) + frame)
                    written += 1
        out.write(b"".join(chunk))
    return {"path": str(path), "packets": written, "rdp_connections": rdp}


def write_busy_pcap(
    path: str | Path,
    n_packets: int = 1_000_000,
    rdp_handshakes: int = 300,
    rdp_exchange: tuple[Sequence[bytes], Sequence[bytes]] | None = None,
    *,
    seed: int = 1,
    rdp_ports: Sequence[int] = (3389, 3389, 3390, 50000),
    compress: bool = False,
) -> dict:
    """The busy-link shape (issue 12): nearly every packet belongs to a flow seen mid-stream with
    one or two packets (1M packets ~ 1M flows), with ``rdp_handshakes`` complete RDP connections
    among them, spread over ``rdp_ports`` (some non-standard)."""
    rng = random.Random(seed)
    client_msgs, server_msgs = rdp_exchange or ([DEFAULT_CR], [DEFAULT_CC])
    blob = bytes(rng.getrandbits(8) for _ in range(8192)).replace(b"\x03\x00", b"\x17\x03")
    blob = blob.replace(b"\x05", b"\x06").replace(b"\x16\x03", b"\x17\x03")
    rdp_every = max(1, n_packets // (rdp_handshakes + 1)) if rdp_handshakes else 0
    next_rdp = rdp_every
    rdp: list[dict] = []
    pending: list[bytes] = []  # frames of the RDP connection being interleaved
    opener = gzip.open if compress else open
    written = 0
    flow = 0
    ts0 = 1_700_000_000
    with opener(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        chunk: list[bytes] = []

        def put(frame: bytes) -> None:
            nonlocal written
            ts = ts0 + written // 20000
            usec = (written % 20000) * 50
            chunk.append(_rec_hdr.pack(ts, usec, len(frame), len(frame)) + frame)
            written += 1

        while written < n_packets or pending:
            if rdp_every and written >= next_rdp and len(rdp) < rdp_handshakes:
                next_rdp += rdp_every
                n = len(rdp) + 1
                client = bytes((172, 16, (n >> 8) & 255, n & 255))
                server = bytes((172, 31, 0, 1 + n % 50))
                cport, sport = rng.randrange(49152, 65535), rdp_ports[n % len(rdp_ports)]
                pending += tcp_connection(rng, client, cport, server, sport, client_msgs,
                                          server_msgs)  # fmt: skip
                rdp.append({"client": ".".join(map(str, client)), "client_port": cport,
                            "server": ".".join(map(str, server)), "server_port": sport})  # fmt: skip
            if pending and (rng.random() < 0.05 or written >= n_packets):
                put(pending.pop(0))
            elif written < n_packets:
                flow += 1
                a = bytes((10, 1 + (flow >> 16) % 200, (flow >> 8) & 255, flow & 255))
                b = bytes((192, 168, rng.randrange(1, 255), rng.randrange(1, 255)))
                ap, bp = rng.randrange(20000, 65000), rng.choice((80, 443, 22, 8080, 3389, 53))
                off = rng.randrange(0, 6000)
                data = blob[off : off + rng.randrange(40, 1400)]
                if bp == 53:
                    put(udp_frame(a, ap, b, bp, data[:60]))
                else:
                    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
                    put(tcp_frame(a, ap, b, bp, seq, ack, 0x18, data))
                    if rng.random() < 0.3 and written < n_packets:
                        put(tcp_frame(b, bp, a, ap, ack, seq + len(data), 0x10))
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
    return {"path": str(path), "packets": written, "rdp_connections": rdp, "flows": flow}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rdp", type=int, default=300, help="number of RDP handshakes to place")
    ap.add_argument("--port", type=int, default=3389)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument(
        "--shape",
        choices=("complete", "busy"),
        default="complete",
        help="complete connections, or a busy link (flows seen mid-stream)",
    )
    args = ap.parse_args(argv)
    if args.shape == "busy":
        summary = write_busy_pcap(args.out, args.packets, args.rdp, seed=args.seed,
                                  compress=args.gzip)  # fmt: skip
    else:
        summary = write_big_pcap(
            args.out, args.packets, args.rdp, seed=args.seed, rdp_port=args.port,
            compress=args.gzip,
        )  # fmt: skip
    json.dump({**summary, "rdp_connections": len(summary["rdp_connections"])}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
