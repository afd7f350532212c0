"""The "session" stage in `check` (depth full) and `sweep --depth session`: real xrdp and the
shadow server through the CLI; `sweep --depth full` opens no session."""

from __future__ import annotations

import json

import pytest
from test_sweep_e2e import run_cli

from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.shadow import DEFAULT_PASSWORD, start_shadow
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
TIMEOUTS = Timeouts(connect=2.0, read=5.0, total=30.0)


@pytest.mark.parametrize(
    ("layer", "level", "path"), [("rdp", "low", "rdp"), ("tls", "high", "tls")]
)
async def test_check_at_depth_full_walks_to_the_logon_screen(tmp_path, layer, level, path):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer=layer,
                    crypt_level=level) as srv:  # fmt: skip
        (report,) = await check_target(Target(srv.host, srv.port, True),
                                       CheckOptions(timeouts=TIMEOUTS))  # fmt: skip
        (without,) = await check_target(Target(srv.host, srv.port, True),
                                        CheckOptions(timeouts=TIMEOUTS, session=False))  # fmt: skip
    facts = report.observation.session
    assert facts is not None and facts.reached_logon and facts.path == path
    stage = report.observation.stages["session"]
    assert stage["reached_logon"] is True and stage["summary"].startswith("reached the logon")
    ids = {f.id for f in report.findings}
    assert "session.logon_screen" in ids and "session.logon_slow" not in ids
    assert without.observation.session is None and "session" not in without.observation.stages
    assert not any(f.id.startswith("session.") for f in without.findings)


async def test_cli_check_prints_the_logon_screen_line(tmp_path):
    require_root()
    require_binaries("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash")
    with start_shadow(tmp_path, address=loopback_address(), sec="tls") as srv:
        code, out, err = await run_cli("check", f"{srv.host}:{srv.port}", "--timeout", "5")
        jcode, jout, _ = await run_cli("check", f"{srv.host}:{srv.port}", "--json")
    text = out.decode()
    assert "Logon screen: reached the logon screen in " in text, text + err.decode()
    assert "Brings a client to its logon screen in" in text
    row = json.loads(jout.decode().splitlines()[0])
    session = row["stages"]["session"]
    assert session["path"] == "tls" and session["licensing"]["outcome"] == "valid_client"
    assert session["demand_active"]["desktop"] == [800, 600, 24]
    assert DEFAULT_PASSWORD not in text + jout.decode() + err.decode()
    assert code == jcode


async def test_sweep_depth_session_walks_and_depth_full_does_not(tmp_path):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="rdp",
                    crypt_level="high") as srv:  # fmt: skip
        target = f"{srv.host}"
        full = await run_cli("sweep", target, "--ports", str(srv.port), "--depth", "full", "--json")
        session = await run_cli("sweep", target, "--ports", str(srv.port), "--depth", "session",
                                "--json")  # fmt: skip
    (full_row,) = [json.loads(x) for x in full[1].decode().splitlines()]
    (session_row,) = [json.loads(x) for x in session[1].decode().splitlines()]
    assert "session" not in full_row["stages"] and "mcs" in full_row["stages"]
    assert session_row["stages"]["session"]["reached_logon"] is True
    assert session_row["stages"]["session"]["encryption_method"] == "128BIT"
    bad = await run_cli("sweep", target, "--depth", "logon")
    assert bad[0] == 2 and b"--depth must be tcp, x224, full or session" in bad[2]
