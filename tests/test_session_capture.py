"""The pcap side of issue 10: a tcpdump capture of the live walk against xrdp, decoded by
rdprobe.capture.session_decode, gives the same facts the walk saw where the wire shows them in
clear (level none: everything; level low: what the server sends) and says the rest was
encrypted elsewhere (level high)."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from rdprobe.analysis.session_facts import Step, StopKind
from rdprobe.capture.analyze import analyze
from rdprobe.capture.connection import to_observation
from rdprobe.capture.session_decode import CLIENT, SERVER, decode_session
from rdprobe.live.negotiate import Request
from rdprobe.live.session_open import probe_session
from rdprobe.live.timing import Deadline, Timeouts
from rdprobe.protocol import tpkt
from rdprobe.protocol.errors import NeedMoreData
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
TIMEOUTS = Timeouts(connect=2.0, read=5.0, total=20.0)


def _pdus(path, server: str, port: int) -> tuple[list[tuple[str, float, bytes]], float]:
    """Whole TPKT PDUs per direction, in capture order, and the SYN's timestamp."""
    bufs = {CLIENT: b"", SERVER: b""}
    seen: set[tuple[str, int]] = set()
    out, syn = [], None
    for pkt in rdpcap(str(path)):
        if IP not in pkt or TCP not in pkt:
            continue
        tcp = pkt[TCP]
        if syn is None and tcp.flags & 0x02:
            syn = float(pkt.time)
        direction = SERVER if pkt[IP].src == server and tcp.sport == port else CLIENT
        data = bytes(tcp.payload)
        if not data or (direction, tcp.seq) in seen:
            continue
        seen.add((direction, tcp.seq))
        bufs[direction] += data
        while True:
            try:
                pdu, bufs[direction] = tpkt.split(bufs[direction])
            except NeedMoreData:
                break
            out.append((direction, float(pkt.time), pdu))
    return out, syn or 0.0


async def _captured_walk(tmp_path, crypt_level: str):
    address = loopback_address()
    with start_xrdp(tmp_path, address=address, security_layer="rdp",
                    crypt_level=crypt_level) as srv:  # fmt: skip
        pcap = tmp_path / "walk.pcap"
        dump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(pcap), "host", address],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.sleep(1.0)  # tcpdump reports "listening" on stderr; a second is ample
            live = await probe_session(srv.host, srv.port, Request("RDP", 0), cookie="rdprobe",
                                       timeouts=TIMEOUTS, deadline=Deadline(TIMEOUTS.total))  # fmt: skip
            await asyncio.sleep(0.5)
        finally:
            dump.send_signal(signal.SIGINT)
            dump.wait(10)
    pdus, syn = _pdus(pcap, srv.host, srv.port)
    # after CR, CC, MCS Connect Initial and Response
    return live, pdus[4:], syn, pcap


@pytest.mark.parametrize("crypt_level", ["none", "low", "high"])
async def test_capture_decodes_what_crossed_in_clear(tmp_path, crypt_level):
    require_root()
    require_binaries("xrdp", "tcpdump")
    live, pdus, syn, pcap = await _captured_walk(tmp_path, crypt_level)
    assert live.reached_logon
    method, level = {"none": (0, 0), "low": (1, 1), "high": (2, 3)}[crypt_level]
    seen = decode_session(pdus, selected_protocol=0, encryption_method=method,
                          encryption_level=level, started=syn)  # fmt: skip
    assert seen.user_channel == live.user_channel == 1004
    assert seen.joined_channels == live.joined_channels
    if crypt_level == "high":
        assert not seen.reached_logon and seen.stop_kind is StopKind.ENCRYPTED
        assert seen.stop_reason == "the rest was encrypted"
        return
    assert seen.reached_logon, seen.outcome
    assert seen.demand_active == live.demand_active
    assert seen.licensing.outcome == live.licensing.outcome == "valid_client"
    assert seen.licensing.company == "Microsoft Corporation"
    assert [s.step for s in seen.steps][-2:] == [Step.LICENSING, Step.DEMAND_ACTIVE]
    assert (seen.time_of(Step.SECURITY_EXCHANGE) is not None) == (crypt_level == "low")
    assert 0 < seen.logon_ms < 5000
    # the same through `rdprobe pcap`'s own reader and reassembly
    connections, warnings = analyze(pcap)
    assert warnings == []
    (conn,) = [c for c in connections if c.transport == "tcp"]
    via_pcap = to_observation(conn).session
    assert via_pcap is not None and via_pcap.demand_active == live.demand_active
    assert via_pcap.licensing.messages == seen.licensing.messages
