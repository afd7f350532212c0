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
from rdprobe.live import mcs as live_mcs
from rdprobe.live import tls as live_tls
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.protocol import x224
from rdprobe.protocol.x224_values import Protocol

CONFIRM_SSL = bytes.fromhex("030000130ed00000123400020f080001000000")


async def test_stages_go_on_from_the_matrix_connections():
    """win-tls-selfsigned at depth full: 6 matrix rows; TLS goes on from the SSL|HYBRID row's own
    connection (it selected HYBRID) and NLA after it on that same TLS connection, one handshake
    for both; MCS from RDP's; then 3 pinned TLS versions (TLS 1.3 was seen in the stage's own
    handshake), the first on the SSL row's connection, and 3 encryption methods (128BIT was the
    first MCS probe's choice), two on the RDSTLS and no-negotiation rows' connections (both
    confirms chose Standard RDP Security): 9 connections, not 17; plus the walk to the logon
    screen on a fresh connection of its own (issue 10): 10."""
    em = await serve("win-tls-selfsigned", "127.0.0.1", 0)
    try:
        (report,) = await check_target(Target("127.0.0.1", em.port, True), CheckOptions())
    finally:
        await em.close()
    obs = report.observation
    assert obs.tls.version == "TLSv1.3" and obs.tls.request == "SSL|HYBRID"
    assert obs.nla.selected == obs.tls.selected == "HYBRID"
    assert obs.tls_versions.versions["TLSv1.3"] == "accepted"
    assert obs.tls_versions.accepted == ["TLSv1.2", "TLSv1.3"]
    assert obs.mcs.server_data is not None and len(obs.mcs.methods) == 4
    assert obs.nla.selected
    assert obs.session is not None and obs.session.path == "tls"
    assert obs.mcs.methods["128BIT"].accepted
    assert em.connections == 10
    assert len(report.observation.attempts) == 6


async def _alone(port: int, requested: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A fresh connection to the emulator, through its Connection Confirm for ``requested``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(x224.build_request(requested=requested))
    await writer.drain()
    await live_mcs.read_tpkt(reader, 5)
    return reader, writer


async def test_what_the_first_answers_show_is_not_asked_again():
    """win2012-tls-nla (TLS 1.0 to 1.2): the TLS stage's handshake agrees on TLS 1.2, which
    answers for TLS 1.2 (accepted) and 1.3 (refused), so only 1.0 and 1.1 are pinned; the first
    MCS probe chose 128BIT, so 40BIT, 56BIT and FIPS alone are asked; one version and two methods
    go on from the SSL, RDSTLS and no-negotiation rows' connections: 6 + 1 + 1 connections and
    the logon walk's, 9 (15, then 12 before). The NTLM challenge comes over the TLS stage's own
    handshake, on the SSL|HYBRID row. What is reported is what asking every version and every
    method alone on a fresh connection of its own gets."""
    em = await serve("win2012-tls-nla", "127.0.0.1", 0)
    try:
        (report,) = await check_target(Target("127.0.0.1", em.port, True), CheckOptions())
        probed = em.connections

        async def tls_stream():
            return await _alone(em.port, Protocol.SSL)

        async def rdp_stream():
            return (*await _alone(em.port, Protocol.RDP), 0)

        versions = await live_tls.version_matrix(tls_stream, timeout=5)
        methods = await live_mcs.encryption_matrix(rdp_stream, timeout=5)
    finally:
        await em.close()
    obs = report.observation
    assert obs.tls.version == "TLSv1.2" and obs.mcs.server_data.security.method_name == "128BIT"
    assert obs.tls.request == "SSL|HYBRID" and obs.nla.challenge is not None
    assert obs.tls_versions.versions == versions
    assert versions == {
        "TLSv1": "accepted", "TLSv1.1": "accepted", "TLSv1.2": "accepted", "TLSv1.3": "refused"
    }  # fmt: skip
    assert obs.mcs.methods == methods
    assert [o.accepted for o in methods.values()] == [False, False, True, False]
    assert probed == 9


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


def _fresh_python(code: str) -> str:
    """What ``code`` prints in an interpreter of its own (so that sys.modules is its own)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout


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
    out = _fresh_python(code)
    assert out.startswith("refused False ")
    assert "stages" not in out and "tls" not in out and "mcs" not in out and "nla" not in out


def test_only_a_walk_to_the_logon_screen_loads_its_modules():
    """A sweep at depth full asks no walk (CheckOptions.session is off there): the session
    modules are loaded by the walk itself, so such a sweep starts without them; a check at
    depth full walks, and has them."""
    code = (
        "import asyncio, sys\n"
        "from rdprobe.emulate.server import serve\n"
        "from rdprobe.live.check import CheckOptions, check_target\n"
        "from rdprobe.live.target import Target\n"
        "from rdprobe.live.timing import Timeouts\n"
        "WALK = ('rdprobe.live.session_stage', 'rdprobe.live.session_open', 'rdprobe.live.session')\n"
        "async def main():\n"
        "    async with await serve('win2012-tls-nla') as server:\n"
        "        target = Target('127.0.0.1', server.port, True)\n"
        "        for session in (False, True):\n"
        "            (r,) = await check_target(target, CheckOptions(\n"
        "                timeouts=Timeouts.from_timeout(1), session=session))\n"
        "            print(r.outcome, r.observation.mcs is not None,\n"
        "                  [m for m in WALK if m in sys.modules])\n"
        "asyncio.run(main())\n"
    )
    out = _fresh_python(code).splitlines()
    assert out[0] == "rdp True []"
    assert out[1].startswith("rdp True ")
    assert all(m in out[1] for m in ("session_stage", "session_open"))


async def test_a_stage_its_options_leave_out_gets_no_task(monkeypatch):
    """The optional stages (the walk, --udp, --user) are not started when their option is off:
    no task, no timer. Each stage here records that it ran; the rest of check is real."""
    from rdprobe.live import stages

    ran: list[str] = []

    def recording(name):
        async def stage(ctx) -> None:
            ran.append(name)

        return stage

    monkeypatch.setattr(
        stages, "STAGES", tuple((name, recording(name), rdp) for name, _s, rdp in stages.STAGES)
    )
    em = await serve("win2012-tls-nla", "127.0.0.1", 0)
    try:
        target = Target("127.0.0.1", em.port, True)
        await check_target(target, CheckOptions(session=False))
        assert sorted(ran) == ["mcs", "nla", "tls"]
        ran.clear()
        await check_target(target, CheckOptions(session=True, udp=True))
        assert sorted(ran) == ["mcs", "nla", "session", "tls", "udp"]
    finally:
        await em.close()
