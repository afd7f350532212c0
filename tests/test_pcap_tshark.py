"""Captures recorded here (tcpdump on lo) of `rdprobe check` runs against xrdp and the emulator:
rdprobe pcap's fields must agree with tshark's RDP dissector on the same file, and its findings
with what the live check reported for the same server (the negotiation part)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.capture.analyze import analyze, judge
from rdprobe.capture.connection import server_observation
from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
FAST = Timeouts(connect=2.0, read=3.0, total=20.0)
NEGOTIATION = ("rdp.", "neg.", "x224.", "tcp.", "service.")
FIELDS = (
    "tcp.srcport", "tcp.dstport", "cotp.type", "rdp.rt_cookie", "rdp.neg_type",
    "rdp.negReq.requestedProtocols", "rdp.negReq.selectedProtocol", "rdp.negFailure.failureCode",
    "rdp.negRsp.flags", "rdp.client.name", "rdp.client.build", "rdp.desktop.width",
    "rdp.encryptionMethod", "rdp.encryptionLevel",
)  # fmt: skip


@pytest.fixture
def tools():
    require_binaries("tcpdump", "tshark")


@contextmanager
def tcpdump(path: Path, host: str):
    """Record loopback traffic of ``host`` to ``path`` until the block ends."""
    proc = subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-B",
            "65536",
            "--immediate-mode",
            "-U",
            "-w",
            str(path),
            "host",
            host,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 10.0)
        if not ready:
            pytest.fail("tcpdump did not start listening within 10 s")
        proc.stderr.readline()  # "listening on lo, ..."
        yield
        _settle(path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _settle(path: Path, quiet: float = 0.5, limit: float = 8.0) -> None:
    """Wait until tcpdump has written the last packets (the file stops growing for ``quiet`` s)."""
    deadline = time.monotonic() + limit
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


def tshark_rows(path: Path, port: int) -> list[dict[str, str]]:
    cmd = ["tshark", "-r", str(path), "-d", f"tcp.port=={port},tpkt", "-Y", "cotp", "-T", "fields"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in out.splitlines()]


def _int(text: str) -> int | None:
    text = text.split(",")[0]
    return None if not text else int(text, 16) if text.startswith("0x") else int(text)


def compare_with_tshark(path: Path, port: int):
    conns, warnings = analyze(path, port=port)
    assert warnings == []
    by_port = {c.client_port: c for c in conns if c.transport == "tcp"}
    rows = tshark_rows(path, port)
    requests = [r for r in rows if r["cotp.type"] == "0x0e"]
    assert requests and {int(r["tcp.srcport"]) for r in requests} == set(by_port)
    for r in rows:
        if r["cotp.type"] == "0x0e":
            conn = by_port[int(r["tcp.srcport"])]
            assert conn.requested == _int(r["rdp.negReq.requestedProtocols"])
            cookie = r["rdp.rt_cookie"].removeprefix("Cookie: mstshash=").strip() or None
            assert conn.request.cookie == cookie
        elif r["cotp.type"] == "0x0d":
            conn = by_port[int(r["tcp.dstport"])]
            neg = conn.negotiation
            kind = _int(r["rdp.neg_type"])
            assert {None: None, 2: "NegotiationResponse", 3: "NegotiationFailure"}[kind] == (
                type(neg).__name__ if neg else None
            )
            if kind == 2:
                assert neg.selected == _int(r["rdp.negReq.selectedProtocol"])
                assert neg.flags == _int(r["rdp.negRsp.flags"])
            elif kind == 3:
                assert neg.code == _int(r["rdp.negFailure.failureCode"])
        elif r["rdp.client.name"]:
            conn = by_port[int(r["tcp.srcport"])]
            core = conn.client_data.core
            assert core.client_name == r["rdp.client.name"]
            assert core.client_build == _int(r["rdp.client.build"])
            assert core.desktop_width == _int(r["rdp.desktop.width"])
        elif r["rdp.encryptionLevel"]:
            conn = by_port[int(r["tcp.dstport"])]
            sec = conn.server_data.security
            assert sec.encryption_method == _int(r["rdp.encryptionMethod"])
            assert sec.encryption_level == _int(r["rdp.encryptionLevel"])
    return conns


def negotiation_ids(findings) -> set[str]:
    return {f.id for f in findings if f.id.startswith(NEGOTIATION)}


async def live_check(host: str, port: int, depth: str):
    (report,) = await check_target(
        Target(host, port, True), CheckOptions(timeouts=FAST, depth=depth)
    )
    return report


@pytest.mark.parametrize(("layer", "depth"), [("rdp", "full"), ("negotiate", "x224")])
async def test_xrdp_check_run(tmp_path, tools, layer, depth):
    require_binaries("xrdp")
    addr = loopback_address()
    cap = tmp_path / f"xrdp-{layer}.pcap"
    with start_xrdp(tmp_path, address=addr, security_layer=layer) as srv:
        with tcpdump(cap, addr):
            live = await live_check(srv.host, srv.port, depth)
        port = srv.port
    conns = compare_with_tshark(cap, port)
    assert len(conns) >= len(live.observation.attempts)
    merged = classify(server_observation(conns), conns[0].started)
    assert merged.setting.summary == live.setting.summary
    assert negotiation_ids(merged.findings) == negotiation_ids(live.findings)
    if layer == "rdp":  # the MCS exchange of the check's mcs stage is in the capture too
        with_mcs = [c for c in conns if c.server_data is not None]
        assert with_mcs
        live_sec = live.observation.stages["mcs"]["server_data"]["security"]
        assert with_mcs[0].server_data.security.encryption_level == live_sec["encryption_level"]
        assert "rdpsec.in_use" in {f.id for f in judge(with_mcs[0]).findings}


@pytest.mark.parametrize("profile", ["win2003-legacy", "accept-reset"])
async def test_emulator_check_run(tmp_path, tools, profile):
    addr = loopback_address()
    cap = tmp_path / f"{profile}.pcap"
    em = await serve(profile, addr, 0)
    try:
        with tcpdump(cap, addr):
            live = await live_check(addr, em.port, "x224")
    finally:
        await em.close()
    conns = compare_with_tshark(cap, em.port)
    merged = classify(server_observation(conns), conns[0].started)
    assert merged.outcome == live.outcome
    live_ids = negotiation_ids(live.findings)
    if live.observation.direct_tls is not None:  # the capture holds only the RDP attempts
        live_ids = {i for i in live_ids if not i.startswith("service.")}
        live_ids |= negotiation_ids(
            classify(_without_direct_tls(live), live.observation.started).findings
        )
    assert negotiation_ids(merged.findings) == live_ids
    if profile == "accept-reset":
        (conn,) = conns
        assert conn.ended_by == "server" and conn.end_reason == "rst"
        assert "tcp.reset_before_reply" in {f.id for f in judge(conn).findings}


def _without_direct_tls(report):
    from dataclasses import replace

    return replace(report.observation, direct_tls=None)


def test_tools_present_or_skip(tools):
    assert shutil.which("tshark") and os.geteuid() == 0
