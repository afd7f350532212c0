"""`rdprobe demo`: emulated listeners on loopback, each checked, so a newcomer sees every diagnosis
without owning a Terminal Server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rdprobe.analysis.classify import Report
from rdprobe.emulate.profiles import get
from rdprobe.emulate.server import EmulatorServer, serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts

DEMO_HOST = "127.0.0.1"
#: Short enough that the silent and drip listeners finish quickly, long enough for TLS on a busy box.
DEMO_TIMEOUTS = Timeouts(connect=2.0, read=2.0, total=12.0)
_MCS, _TLS, _UDP = frozenset({"mcs"}), frozenset({"tls", "mcs"}), frozenset({"udp"})
_X224: frozenset[str] = frozenset()

#: (profile, the later stages the emulator really serves for it), in the order shown.
DEMO: tuple[tuple[str, frozenset[str]], ...] = (
    ("win2003-legacy", _MCS),
    ("win2008-x509", _MCS),
    ("win2008r2-tls", _X224),
    ("win-tls-selfsigned", _TLS),
    ("win10-nla", _X224),
    ("rdp-only", _MCS),
    ("ssl-cert-missing", _X224),
    ("corrupt-certificate", _MCS),
    ("xrdp-rdsaad", _X224),
    ("accept-reset", _X224),
    ("accept-close", _X224),
    ("silent", _X224),
    ("drip", _X224),
    ("oversized", _X224),
    ("truncated", _X224),
    ("garbage", _X224),
    ("reset-after-confirm", _X224),
    ("flapping", _X224),
    ("http", _X224),
    ("ssh", _X224),
    ("vnc", _X224),
    ("tls-direct", _X224),
    ("rdpudp", _UDP),
)


@dataclass(frozen=True)
class DemoResult:
    profile: str
    description: str
    report: Report


async def _one(name: str, stages: frozenset[str], server: EmulatorServer) -> DemoResult:
    opts = CheckOptions(
        timeouts=DEMO_TIMEOUTS, udp="udp" in stages, depth="full", per_host=2, stages=stages
    )
    (report,) = await check_target(Target(DEMO_HOST, server.port, True), opts)
    return DemoResult(name, get(name).description, report)


async def run_demo() -> list[DemoResult]:
    """Start every demo profile on an ephemeral loopback port, check them all, stop them."""
    servers: list[tuple[str, frozenset[str], EmulatorServer]] = []
    try:
        for name, stages in DEMO:
            udp = get(name).transport == "udp"
            servers.append((name, stages, await serve(name, DEMO_HOST, 0, udp=udp)))
        return list(await asyncio.gather(*(_one(n, st, s) for n, st, s in servers)))
    finally:
        for _n, _st, server in servers:
            await server.close()
