"""RDP over UDP probe: one MS-RDPEUDP SYN (padded to the MTU), classify the answer.

Why the standard library and not asyncio-dgram: asyncio-dgram's ``recv()`` does not wake on an
ICMP port-unreachable (measured here: a closed loopback port ran to its 2 s timeout and the
ConnectionRefusedError only surfaced on the next send), while ``asyncio.DatagramProtocol`` gets
``error_received`` at once. Telling a closed port from a silent one needs exactly that.

Safety: no spoofing (a connected socket, the OS picks our address), the SYN is as large as the
SYN+ACK it elicits (~1:1), retransmissions are spaced at least 500 ms (MS-RDPEUDP 3.1.6.1 minimum
retransmit timeout) and bounded in count.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from rdprobe.analysis.facts import UdpFacts
from rdprobe.protocol import rdpudp
from rdprobe.protocol.endpoint import RDP_PORT
from rdprobe.protocol.errors import ProtocolError

MIN_RETRY_INTERVAL_S = 0.5
MAX_RETRIES = 5


class _Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.replies: list[tuple[float, bytes]] = []
        self.error: OSError | None = None
        self.error_at = 0.0

    def datagram_received(self, data: bytes, addr: object) -> None:
        if len(self.replies) < 16:
            self.replies.append((time.monotonic(), data))
        self.event.set()

    def error_received(self, exc: Exception) -> None:
        if self.error is None and isinstance(exc, OSError):
            self.error = exc
            self.error_at = time.monotonic()
        self.event.set()


#: Windows reports an ICMP port unreachable on a UDP socket as WSAECONNRESET (10054) or, through
#: the proactor's overlapped receive, ERROR_PORT_UNREACHABLE (1234); POSIX as ECONNREFUSED.
_WIN_UNREACHABLE = frozenset({10054, 10061, 1234})


def port_unreachable(err: OSError) -> bool:
    """Did the error come from an ICMP port unreachable (a closed UDP port)?"""
    if isinstance(err, ConnectionRefusedError | ConnectionResetError):
        return True
    return getattr(err, "winerror", None) in _WIN_UNREACHABLE


async def udp_probe(
    host: str, port: int = RDP_PORT, *, timeout: float = 3.0, retries: int = 2
) -> UdpFacts:
    """Send a SYN (and up to ``retries`` retransmissions) and classify. Never raises.

    ``timeout`` bounds the whole probe (the caller passes min(--timeout, time left of the
    target's deadline)); attempts are spread over it, at least 500 ms apart, so a short one
    sends fewer.
    """
    retries = max(0, min(retries, MAX_RETRIES))
    interval = max(MIN_RETRY_INTERVAL_S, timeout / (retries + 1))
    syn = rdpudp.build_syn()
    isn = rdpudp.parse_syn(syn).isn
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await asyncio.wait_for(
            loop.create_datagram_endpoint(_Probe, remote_addr=(host, port)), timeout
        )
    except (OSError, TimeoutError) as exc:
        return UdpFacts("error", error=f"cannot open UDP socket to {host}:{port}: {exc}")
    sent = attempts = 0
    deadline = time.monotonic() + max(timeout, 0.0)  # the caller's cut of the target deadline
    sent_at = time.monotonic()
    try:
        while attempts <= retries and time.monotonic() < deadline:
            sent_at = time.monotonic()
            transport.sendto(syn)
            sent += len(syn)
            attempts += 1
            wait = min(interval, deadline - time.monotonic())
            try:
                await asyncio.wait_for(proto.event.wait(), max(wait, 0.0))
                break
            except TimeoutError:
                continue
    finally:
        transport.close()
    silent = UdpFacts("silent", bytes_sent=sent, probe_size=len(syn), attempts=attempts)
    received = sum(len(d) for _, d in proto.replies)
    if proto.replies:
        at, first = proto.replies[0]
        rtt = round((at - sent_at) * 1000, 2)
        answer, error = None, ""
        try:
            answer = rdpudp.parse_syn(first)
        except ProtocolError as exc:
            error = str(exc)
        if answer is not None and answer.is_syn_ack:
            return replace(
                silent, outcome="synack", syn_ack=answer, bytes_received=received, rtt_ms=rtt,
                amplification=round(len(first) / len(syn), 3), ack_matches=answer.ack == isn,
            )  # fmt: skip
        if answer is not None:
            error = f"SYN without ACK (flags 0x{answer.flags:04x})"
        return replace(silent, outcome="other", bytes_received=received, rtt_ms=rtt, error=error,
                       amplification=round(len(first) / len(syn), 3),
                       reply_hex=first[:64].hex())  # fmt: skip
    if proto.error is not None:
        err = proto.error
        if port_unreachable(err):
            rtt = round((proto.error_at - sent_at) * 1000, 2)
            return replace(silent, outcome="closed", rtt_ms=rtt, error="ICMP port unreachable")
        return replace(silent, outcome="error", error=f"{type(err).__name__}: {err}")
    return silent
