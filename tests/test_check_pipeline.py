"""`check` runs what does not depend on each other at once, and reuses what it can.

Against emulator listeners and a scripted server on loopback: the rest of the matrix starts
while the primary connection still lingers, the later stages go on from the matrix rows' own
connections, and a refused port loads none of the later stages.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target

CONFIRM_SSL = bytes.fromhex("030000130ed00000123400020f080001000000")


async def test_stages_go_on_from_the_matrix_connections():
    """win-tls-selfsigned at depth full: 6 matrix rows; TLS goes on from the SSL row's own
    connection, NLA from SSL|HYBRID's, MCS from RDP's; then 3 pinned TLS versions (TLS 1.3 was
    seen in the stage's own handshake) and 4 encryption methods: 13 connections, not 17; plus
    the walk to the logon screen on a fresh connection of its own (issue 10): 14."""
    em = await serve("win-tls-selfsigned", "127.0.0.1", 0)
    try:
        (report,) = await check_target(Target("127.0.0.1", em.port, True), CheckOptions())
    finally:
        await em.close()
    obs = report.observation
    assert obs.tls.version == "TLSv1.3" and obs.tls.request == "SSL"
    assert obs.tls_versions.versions["TLSv1.3"] == "accepted"
    assert obs.tls_versions.accepted == ["TLSv1.2", "TLSv1.3"]
    assert obs.mcs.server_data is not None and len(obs.mcs.methods) == 4
    assert obs.nla.selected
    assert obs.session is not None and obs.session.path == "tls"
    assert em.connections == 14
    assert len(report.observation.attempts) == 6


async def test_matrix_starts_while_the_primary_lingers():
    """The primary connection is watched for a drop after its confirm (the linger); the other
    rows must not wait for that: the second connection arrives before the first is closed."""
    events: list[tuple[str, int]] = []
    count = 0

    async def handle(reader, writer):
        nonlocal count
        count += 1
        me = count
        events.append(("open", me))
        try:
            await asyncio.wait_for(reader.read(1024), 5)
            writer.write(CONFIRM_SSL)
            await writer.drain()
            await asyncio.wait_for(reader.read(1), 5)  # until the client closes
        except (OSError, TimeoutError):
            pass
        finally:
            events.append(("closed", me))
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        opts = CheckOptions(depth="x224")
        (report,) = await check_target(Target("127.0.0.1", port, True), opts)
    finally:
        server.close()
        await server.wait_closed()
    assert len(report.observation.attempts) == 6 and count == 6
    assert events.index(("open", 2)) < events.index(("closed", 1))
    assert report.observation.attempts[0].ended_by_server is None  # the linger saw no drop


def test_a_refused_port_loads_no_later_stage():
    """Depth full on a port nothing listens on: TLS, NLA and MCS code, and cryptography (only
    needed to judge a certificate chain), are never imported."""
    code = (
        "import asyncio, socket, sys\n"
        "from rdprobe.live.check import CheckOptions, check_target\n"
        "from rdprobe.live.target import Target\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "(r,) = asyncio.run(check_target(Target('127.0.0.1', port, True), CheckOptions()))\n"
        "print(r.outcome, 'cryptography' in sys.modules,\n"
        "      sorted(m for m in sys.modules if m.startswith('rdprobe.live.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("refused False ")
    assert "stages" not in out and "tls" not in out and "mcs" not in out and "nla" not in out
