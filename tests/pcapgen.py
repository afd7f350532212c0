"""Hand-built captures of exact shapes (TCP flag sequences, TLS flights, SOCKS, UDP) for the tests.

Frames are Ethernet + IPv4 (checksums zero, which readers ignore); :func:`pcap_bytes` writes a
little-endian microsecond pcap and :func:`pcapng_bytes` one pcapng section with one interface.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rdprobe.protocol import x224

ETH = bytes.fromhex("0200000000020200000000010800")
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10

# MS-RDPBCGR 2.2.1.1 / 2.2.1.2: CR with cookie and RDP_NEG_REQ (SSL|HYBRID), CC selecting SSL.
CR = x224.build_request(cookie="tester", requested=3)
CC_SSL = bytes.fromhex("030000130ed000001234000201080001000000")


def ip4(text: str) -> bytes:
    return bytes(int(p) for p in text.split("."))


def tcp_frame(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
              payload: bytes = b"") -> bytes:  # fmt: skip
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags,
                      64240, 0, 0)  # fmt: skip
    body = tcp + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, 6, 0, src, dst)
    return ETH + ip + body


def udp_frame(src: bytes, sport: int, dst: bytes, dport: int, payload: bytes) -> bytes:
    body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0x4000, 64, 17, 0, src, dst)
    return ETH + ip + body


@dataclass
class Tcp:
    """One TCP connection; each call appends a frame at time ``t`` (seconds since the epoch)."""

    client: str = "10.0.0.1"
    cport: int = 50000
    server: str = "10.0.0.2"
    sport: int = 3389
    t: float = 1_700_000_000.0
    step: float = 0.001
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    cseq: int = 1000
    sseq: int = 900000

    def _add(self, from_client: bool, flags: int, payload: bytes = b"") -> Tcp:
        c, s = ip4(self.client), ip4(self.server)
        if from_client:
            f = tcp_frame(c, self.cport, s, self.sport, self.cseq, self.sseq, flags, payload)
            self.cseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        else:
            f = tcp_frame(s, self.sport, c, self.cport, self.sseq, self.cseq, flags, payload)
            self.sseq += len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.frames.append((self.t, f))
        self.t += self.step
        return self

    def wait(self, seconds: float) -> Tcp:
        self.t += seconds
        return self

    def handshake(self) -> Tcp:
        return self.syn().syn_ack().ack()

    def syn(self) -> Tcp:
        """A SYN; a second call is a retransmission (same sequence number)."""
        if any(f[1][47] & SYN and not f[1][47] & ACK for f in self.frames):
            self.cseq -= 1
        return self._add(True, SYN)

    def syn_ack(self) -> Tcp:
        return self._add(False, SYN | ACK)

    def ack(self) -> Tcp:
        return self._add(True, ACK)

    def c(self, data: bytes, size: int = 1460) -> Tcp:
        for i in range(0, len(data), size):
            self._add(True, PSH | ACK, data[i : i + size])
        return self

    def s(self, data: bytes, size: int = 1460) -> Tcp:
        for i in range(0, len(data), size):
            self._add(False, PSH | ACK, data[i : i + size])
        return self

    def fin_c(self) -> Tcp:
        return self._add(True, FIN | ACK)

    def fin_s(self) -> Tcp:
        return self._add(False, FIN | ACK)

    def rst_c(self) -> Tcp:
        return self._add(True, RST)

    def rst_s(self) -> Tcp:
        return self._add(False, RST | ACK)

    def ack_s(self) -> Tcp:
        return self._add(False, ACK)


def pcap_bytes(frames: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, frame in sorted(frames, key=lambda f: f[0]):
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _ng_block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def pcapng_bytes(frames: list[tuple[float, bytes]], *, tsresol: int | None = None,
                 tsoffset: int = 0) -> bytes:  # fmt: skip
    """pcapng with one Ethernet interface; ``tsresol`` / ``tsoffset`` written as given."""
    opts = b""
    if tsresol is not None:
        opts += struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3
    if tsoffset:
        opts += struct.pack("<HHq", 14, 8, tsoffset)
    if opts:
        opts += struct.pack("<HH", 0, 0)
    out = [_ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    out.append(_ng_block(1, struct.pack("<HHI", 1, 0, 65535) + opts))
    for ts, frame in frames:
        units = int(ts * 1_000_000)
        body = struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame))
        out.append(_ng_block(6, body + frame))
    return b"".join(out)


# -- TLS ------------------------------------------------------------------------------------------


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def records(content_type: int, data: bytes, size: int = 16384, version: int = 0x0303) -> bytes:
    """``data`` cut into TLS records of at most ``size`` bytes."""
    return b"".join(
        struct.pack("!BHH", content_type, version, len(data[i : i + size])) + data[i : i + size]
        for i in range(0, len(data), size)
    )


def server_hello(version: int = 0x0303, cipher: int = 0xC030, extensions: bytes = b"") -> bytes:
    body = struct.pack("!H", version) + bytes(range(32)) + b"\x00" + struct.pack("!HB", cipher, 0)
    if extensions:
        body += struct.pack("!H", len(extensions)) + extensions
    return handshake(2, body)


def certificate_msg(certs: list[bytes]) -> bytes:
    chain = b"".join(len(c).to_bytes(3, "big") + c for c in certs)
    return handshake(11, len(chain).to_bytes(3, "big") + chain)


def ecdhe_key_exchange(group: int = 0x0018) -> bytes:
    point = b"\x04" + bytes(96)
    return handshake(12, b"\x03" + struct.pack("!H", group) + bytes([len(point)]) + point
                     + b"\x04\x01" + struct.pack("!H", 4) + b"sign")  # fmt: skip


def server_flight(certs: list[bytes], *, group: int | None = 0x0018, size: int = 16384) -> bytes:
    """ServerHello, Certificate, [ServerKeyExchange], ServerHelloDone in records of ``size``."""
    hs = server_hello() + certificate_msg(certs)
    if group is not None:
        hs += ecdhe_key_exchange(group)
    hs += handshake(14, b"")
    return records(22, hs, size)


def client_hello(server_name: str = "rdp.example.test") -> bytes:
    from rdprobe.protocol import tlsrec

    return tlsrec.build_client_hello(0x0303, server_name=server_name, random=bytes(32))


def alert(description: int, level: int = 2) -> bytes:
    return records(21, bytes([level, description]))
