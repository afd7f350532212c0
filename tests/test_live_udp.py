"""udp_probe against real asyncio UDP endpoints on 127.0.0.1: answering, closed, silent."""

from __future__ import annotations

import asyncio
import json
import socket
import time

from rdprobe.live.udp import udp_probe
from rdprobe.protocol import rdpudp


class _Server(asyncio.DatagramProtocol):
    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.seen.append((time.monotonic(), data))
        if self.answer and self.transport is not None:
            syn = rdpudp.parse_syn(data)
            # like the Windows answer in rdpeudp-handshake-success.pcap: SYN|ACK|SYNEX, v2, 1232 B
            self.transport.sendto(rdpudp.build_syn_ack(syn, isn=0x0F94EA0B), addr)


async def _endpoint(answer: bool) -> tuple[asyncio.DatagramTransport, _Server, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Server(answer), local_addr=("127.0.0.1", 0)
    )
    return transport, proto, transport.get_extra_info("sockname")[1]


async def test_syn_ack_is_detected_with_mtus_and_ratio() -> None:
    transport, server, port = await _endpoint(answer=True)
    try:
        result = await udp_probe("127.0.0.1", port, timeout=2.0, retries=2)
    finally:
        transport.close()
    assert result.outcome == "synack", result
    assert (result.syn_ack.up_mtu, result.syn_ack.down_mtu) == (1232, 1232)
    assert result.syn_ack.version == 0x0002 and result.ack_matches
    assert result.attempts == 1 and result.bytes_sent == result.probe_size == 1232
    assert result.bytes_received == 1232 and result.amplification == 1.0
    assert result.rtt_ms is not None and result.rtt_ms < 1000
    sent = rdpudp.parse_syn(server.seen[0][1])
    assert sent.ack == 0xFFFFFFFF and sent.length == 1232 and sent.version == 0x0002
    json.dumps(result.to_dict())


async def test_closed_port_is_closed_quickly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    result = await udp_probe("127.0.0.1", port, timeout=3.0, retries=2)
    assert result.outcome == "closed", result
    assert time.monotonic() - start < 1.0 and result.attempts == 1


async def test_silent_port_is_silent_after_timeout_with_spaced_retries() -> None:
    transport, server, port = await _endpoint(answer=False)
    start = time.monotonic()
    try:
        result = await udp_probe("127.0.0.1", port, timeout=1.2, retries=2)
    finally:
        transport.close()
    elapsed = time.monotonic() - start
    assert result.outcome == "silent", result
    assert 1.1 <= elapsed < 3.0
    assert result.attempts == len(server.seen) == 3
    assert result.bytes_sent == 3 * 1232 and result.bytes_received == 0
    gaps = [b[0] - a[0] for a, b in zip(server.seen, server.seen[1:], strict=False)]
    assert all(gap >= 0.45 for gap in gaps), gaps  # >= 500 ms apart, minus clock jitter
    assert len({d for _, d in server.seen}) == 1  # a retransmission repeats the same SYN


async def test_garbage_answer_is_other() -> None:
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(b"SSH-2.0-nope\r\n", addr)  # type: ignore[attr-defined]

    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    try:
        result = await udp_probe("127.0.0.1", transport.get_extra_info("sockname")[1], timeout=1)
    finally:
        transport.close()
    assert result.outcome == "other" and result.reply_hex.startswith(b"SSH".hex())
