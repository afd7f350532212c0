"""Issue 9's negotiation verdicts against real servers and emulated listeners on 127.77.x.y:
FreeRDP shadow with no /sec and with /sec:ext, xrdp security_layer=tls, a flapping listener,
a mutated confirm, an ISO-on-TCP listener, and `find` on a host whose 3389 holds another service.
Every report must also be free of contradictions (rdprobe.analysis.consistency)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from rdprobe.analysis.consistency import violations
from rdprobe.emulate.server import serve, serve_many
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.services import start_nginx
from rig.shadow import start_shadow
from rig.xrdp import start_xrdp

FAST = Timeouts(connect=2.0, read=3.0, total=20.0)
SHADOW_BINARIES = ("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash")


async def probe(host, port, *, depth="x224", **kw):
    (report,) = await check_target(
        Target(host, port, True), CheckOptions(timeouts=FAST, depth=depth, **kw)
    )
    assert violations(report) == []
    return report


def ids(report):
    return {f.id for f in report.findings}


def find_json(*args: str) -> tuple[int, list[dict]]:
    done = subprocess.run(
        [sys.executable, "-m", "rdprobe", "find", *args, "--json", "--timeout", "1.5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert not done.stderr, done.stderr
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


# -- real servers ---------------------------------------------------------------------------------


@pytest.mark.servers
async def test_shadow_without_sec_is_negotiate_not_rdp_only(tmp_path):
    require_root()
    require_binaries(*SHADOW_BINARIES)
    with start_shadow(tmp_path, address=loopback_address(), sec=None) as srv:
        report = await probe(srv.host, srv.port)
    s = report.setting
    assert s.answers["RDSTLS"] == "failure SSL_NOT_ALLOWED_BY_SERVER"
    assert s.answers["SSL"].startswith("selected SSL")
    assert s.security_layer == "Negotiate" and s.tls_supported is True
    assert "neg.rdp_security_only" not in ids(report)
    assert s.legacy_clients_allowed is True  # shadow selects PROTOCOL_RDP for them
    assert "neg.legacy_clients_refused" not in ids(report)


@pytest.mark.servers
async def test_shadow_sec_ext_accepts_nothing_and_is_an_error(tmp_path):
    require_root()
    require_binaries(*SHADOW_BINARIES)
    with start_shadow(tmp_path, address=loopback_address(), sec="ext") as srv:
        report = await probe(srv.host, srv.port)
    assert set(report.setting.answers.values()) == {"failure SSL_REQUIRED_BY_SERVER"}
    assert report.setting.accepts_nothing is True
    assert "neg.accepts_nothing" in ids(report)
    assert str(report.worst) == "error"


@pytest.mark.servers
async def test_shadow_sec_ext_cli_exit_code_is_not_zero(tmp_path):
    require_root()
    require_binaries(*SHADOW_BINARIES)
    with start_shadow(tmp_path, address=loopback_address(), sec="ext") as srv:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "rdprobe", "check", f"{srv.host}:{srv.port}", "--json",
             "--depth", "x224", "--timeout", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    row = json.loads(done.stdout)
    assert done.returncode == 1
    assert row["setting"]["accepts_nothing"] is True
    assert "neg.accepts_nothing" in [f["id"] for f in row["findings"]]


@pytest.mark.servers
async def test_xrdp_tls_says_once_that_legacy_clients_are_refused(tmp_path):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls") as srv:
        report = await probe(srv.host, srv.port, depth="full", stages=frozenset({"mcs"}))
    s = report.setting
    assert s.answers["no negotiation"] == "confirm without negotiation data"
    assert report.observation.stages["mcs"]["request"] == "no negotiation"
    assert s.legacy_clients_allowed is False
    assert "get a Connection Confirm" not in s.summary
    assert "refused after their Connection Confirm, at the MCS stage" in s.summary
    assert [f.id for f in report.findings].count("neg.legacy_clients_refused") == 1


@pytest.mark.servers
async def test_find_names_nginx_on_3389_and_lists_the_xrdp_ports(tmp_path):
    require_root()
    require_binaries("nginx", "xrdp")
    addr = loopback_address()
    with (
        start_nginx(tmp_path, address=addr, port=3389),
        start_xrdp(tmp_path / "a", address=addr, port=3390),
        start_xrdp(tmp_path / "b", address=addr, port=443),
    ):
        code, rows = await asyncio.to_thread(find_json, addr, "--ports", "3389,3390,443,80")
    assert code == 0
    assert [(r["port"], r["outcome"]) for r in rows] == [
        (3389, "wrong_service"),
        (3390, "rdp"),
        (443, "rdp"),
    ]
    found = {f["id"]: f for f in rows[0]["findings"]}
    assert "nginx" in found["service.conflict"]["title"]
    assert found["rdp.found_elsewhere"]["title"] == "RDP answers on port(s) 443, 3390, not on 3389"


# -- emulated listeners ---------------------------------------------------------------------------


async def test_flapping_reset_on_the_legacy_request_is_no_verdict():
    async with await serve("flapping-legacy", "127.0.0.1", 0) as server:
        report = await probe("127.0.0.1", server.port, repeat=20)
    s = report.setting
    assert report.observation.repeat.tries == 20
    assert s.answers["no negotiation"] == "no answer: reset"
    assert s.legacy_clients_allowed is None
    assert "clients without negotiation" not in s.summary
    assert "neg.legacy_clients_refused" not in ids(report)
    f = next(f for f in report.findings if f.id == "tcp.intermittent")
    assert f.evidence["outcomes"] == {"no negotiation": "reset"}


async def test_flapping_listener_never_yields_a_verdict_from_a_reset():
    """The every-3rd-connection flapper: wherever its resets fall, no contradiction (probe())."""
    async with await serve("flapping", "127.0.0.1", 0) as server:
        for _ in range(3):
            report = await probe("127.0.0.1", server.port, repeat=5)
            reset = {a.label for a in report.observation.attempts if a.reply_kind == "reset"}
            if "no negotiation" in reset:
                assert report.setting.legacy_clients_allowed is None


async def test_mutated_confirm_is_unknown_bytes_with_their_preview():
    async with await serve("mutated-confirm", "127.0.0.1", 0) as server:
        report = await probe("127.0.0.1", server.port)
    assert report.outcome == "not_rdp"
    (f,) = [f for f in report.findings if f.id == "service.unknown"]
    assert "\\x13\\x00\\x00\\x13\\x0e\\xd0" in f.title


async def test_iso_on_tcp_listener_is_x224_but_not_rdp():
    async with await serve("iso-transport", "127.0.0.1", 0) as server:
        report = await probe("127.0.0.1", server.port, depth="full", stages=frozenset({"mcs"}))
    assert report.outcome == "x224_not_rdp" and not report.rdp
    (f,) = [f for f in report.findings if f.id == "x224.not_rdp"]
    assert "S7comm" in f.title
    assert "rdp.answered" not in ids(report)


async def test_find_names_the_service_on_3389_and_lists_the_rdp_ports():
    addr = loopback_address()
    servers = await serve_many(
        [("http", addr, 3389), ("win2012-negotiate", addr, 3390), ("win2012-negotiate", addr, 443)]
    )
    try:
        code, rows = await asyncio.to_thread(find_json, addr, "--ports", "3389,3390,443,80")
    finally:
        await asyncio.gather(*(s.close() for s in servers))
    assert code == 0
    assert [(r["port"], r["outcome"]) for r in rows] == [
        (3389, "wrong_service"),
        (3390, "rdp"),
        (443, "rdp"),
    ]
    found = {f["id"]: f for f in rows[0]["findings"]}
    assert "Microsoft-IIS/10.0" in found["service.conflict"]["title"]
    assert found["rdp.found_elsewhere"]["evidence"]["ports"] == "443, 3390"
