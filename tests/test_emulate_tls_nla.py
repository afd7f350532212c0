"""The win2012-tls-nla profile (scripts/bench_sweep.py's listeners) answers every stage of a
depth-full check as a real Windows Server 2012 R2 listener does: TLS 1.0-1.2 with the
certificate shown, NLA's NTLM challenge as recorded (its timestamp live), Standard RDP
Security's MCS answers; and a sweep of it reports exactly that."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rdprobe.emulate.credssp_server import RecordedChallenge, with_timestamp
from rdprobe.emulate.server import serve
from rdprobe.emulate.vectors import W2012R2_NTLM, pdu
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.nla import interpret_reply
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.protocol.credssp import TSRequest
from rdprobe.protocol.ntlm import build_negotiate

TIMEOUTS = Timeouts(connect=2.0, read=2.0, total=10.0)
RECORDED = pdu(W2012R2_NTLM, "credssp_tsrequest_ntlm_challenge")


def test_timestamp_is_rewritten_in_place():
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    out = with_timestamp(RECORDED, now)
    assert len(out) == len(RECORDED)
    before, after = interpret_reply(RECORDED).challenge, interpret_reply(out).challenge
    assert before.timestamp.year == 2019 and after.timestamp == now
    assert after.version == before.version == (6, 3, 9600, 15)
    assert after.dns_computer == before.dns_computer == "WINKDC2012.proxykdc.lab"
    assert with_timestamp(b"no ntlm here", now) == b"no ntlm here"


def test_recorded_challenge_answers_once():
    session = RecordedChallenge(RECORDED)
    first = TSRequest(6, (build_negotiate(),)).build()
    answer, close = session.receive(first)
    assert not close and interpret_reply(answer).challenge is not None
    assert session.receive(first) == (b"", True)  # no logon emulated: it closes
    assert RecordedChallenge(RECORDED).receive(b"\x30\x00garbage") == (b"", True)


async def test_depth_full_sees_what_a_real_listener_shows():
    async with await serve("win2012-tls-nla", "127.0.0.1", 0) as server:
        (report,) = await check_target(
            Target("127.0.0.1", server.port, True),
            CheckOptions(timeouts=TIMEOUTS, session=False, name_lookup="local"),
        )
    ids = {f.id for f in report.findings}
    stages = report.observation.stages
    assert report.outcome == "rdp"
    assert stages["tls"]["version"] == "TLSv1.2" and stages["tls"]["error"] is None
    assert stages["tls"]["chain"], "the certificate is shown"
    assert stages["tls_versions"]["versions"] == {
        "TLSv1": "accepted",
        "TLSv1.1": "accepted",
        "TLSv1.2": "accepted",
        "TLSv1.3": "refused",
    }
    nla = stages["nla"]
    assert nla["selected"] == "HYBRID" and nla["challenge"]["version"] == "6.3.9600"
    stamp = datetime.fromisoformat(nla["challenge"]["timestamp"])
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)
    assert stages["mcs"]["server_data"]["security"]["encryption_method_name"] == "128BIT"
    assert {"tls.legacy_versions_enabled", "nla.identity", "rdpsec.in_use"} <= ids
    assert not {"tls.handshake_failed", "nla.clock_skew", "neg.nla_required"} & ids


async def test_the_walk_reaches_the_logon_screen_on_both_tls_profiles():
    """After the recorded MCS answer inside TLS the session sequence goes on (spec-built, as
    session-valid-client's): the walk reaches the Demand Active in well under its read limit
    instead of waiting for an Attach User Confirm that never came (the error finding
    'stopped at attach user confirm' about a Windows listener that answers it)."""
    import time

    for profile in ("win2012-tls-nla", "win-tls-selfsigned"):
        async with await serve(profile, "127.0.0.1", 0) as server:
            start = time.monotonic()
            (report,) = await check_target(
                Target("127.0.0.1", server.port, True),
                CheckOptions(timeouts=TIMEOUTS, name_lookup="local"),
            )
            took = time.monotonic() - start
        session = report.observation.stages["session"]
        assert session["path"] == "tls" and session["reached_logon"], (profile, session)
        assert session["licensing"]["error_name"] == "STATUS_VALID_CLIENT"
        steps = [s["step"] for s in session["steps"]]
        assert steps[-4:] == ["channel join confirm", "client info", "licensing", "demand active"]
        ids = {f.id for f in report.findings}
        assert "session.logon_screen" in ids
        assert not any(i.startswith("session.") and i != "session.logon_screen" for i in ids)
        assert took < TIMEOUTS.read, (profile, took)  # nothing waited for a read limit


def test_sweep_rows_of_the_bench_profile_are_real_like(tmp_path, monkeypatch):
    """What scripts/bench_sweep.py checks on every depth-full row, on a small sweep."""
    import asyncio
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from bench_sweep import full_row_problems

    from rdprobe.sweep.runner import SweepOptions, run_sweep
    from rig.ports import loopback_address

    hosts = [loopback_address() for _ in range(3)]
    rows: list[dict] = []

    async def main() -> None:
        servers = [await serve("win2012-tls-nla", h, 3389) for h in hosts]
        try:
            opts = SweepOptions(
                check=CheckOptions(
                    timeouts=TIMEOUTS, session=False, name_lookup="local", per_host=8
                ),
                concurrency=8,
            )
            await run_sweep([Target(h, 3389, True) for h in hosts], opts, rows.append)
        finally:
            for s in servers:
                await s.close()

    asyncio.run(main())
    assert sorted(r["host"] for r in rows) == hosts
    assert all(full_row_problems(json.loads(json.dumps(r))) == [] for r in rows)
