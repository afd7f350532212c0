"""`import rdprobe`: the library interface gives the same reports as the command line, against
emulated listeners (bytes of real Windows servers) and a real capture file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import rdprobe
from rdprobe.emulate.server import serve
from rig.ports import loopback_address

ZEEK = Path(__file__).resolve().parent.parent / "captures/zeek"


def test_import_is_cheap_and_curated():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, rdprobe; print(sorted(m for m in ('asyncio', 'ssl', 'rich', 'typer',"
            " 'cryptography') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]"
    assert set(rdprobe.__all__) >= {
        "check", "check_sync", "sweep", "analyze_pcap", "Report", "Finding", "FindingSpec",
        "CATALOGUE", "Severity", "ExitCode", "__version__",
    }  # fmt: skip
    for name in rdprobe.__all__:  # every advertised name resolves
        assert getattr(rdprobe, name) is not None
    with pytest.raises(AttributeError):
        _ = rdprobe.no_such_name
    assert (Path(rdprobe.__file__).parent / "py.typed").is_file()
    assert rdprobe.CATALOGUE["tcp.refused"].severity is rdprobe.Severity.ERROR


async def test_check_returns_a_report_like_the_cli():
    async with await serve("win10-nla", "127.0.0.1", 0) as server:
        report = await rdprobe.check(f"127.0.0.1:{server.port}", timeout=2, depth="x224")
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "rdprobe", "check", f"127.0.0.1:{server.port}", "--json",
             "--timeout", "2", "--depth", "x224"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert isinstance(report, rdprobe.Report)
    assert report.outcome == "rdp"
    assert report.setting is not None and "neg.nla_required" in {f.id for f in report.findings}
    row = json.loads(cli.stdout)
    mine = rdprobe.as_dict(report)
    assert {f["id"] for f in mine["findings"]} == {f["id"] for f in row["findings"]}
    assert mine["outcome"] == row["outcome"] and mine["setting"] == row["setting"]
    assert rdprobe.exit_code([(report.outcome, report.worst)]) == cli.returncode


def test_check_sync_and_bad_input():
    report = rdprobe.check_sync("127.0.0.1:1", timeout=1)
    assert report.outcome == "refused"
    assert [f.id for f in report.findings] == ["tcp.refused"]
    with pytest.raises(rdprobe.TargetError):
        rdprobe.check_sync("bad host")
    with pytest.raises(ValueError, match="depth"):
        rdprobe.check_sync("127.0.0.1", depth="deep")


async def test_sweep_yields_one_report_per_target():
    host = loopback_address()
    async with await serve("win2012-negotiate", host, 0) as server:
        closed = server.port + 1 if server.port < 65535 else server.port - 1
        reports = [
            r
            async for r in rdprobe.sweep(
                [host], ports=[server.port, closed], depth="x224", timeout=1, concurrency=4
            )
        ]
    by_port = {r.observation.port: r for r in reports}
    assert len(reports) == 2 and set(by_port) == {server.port, closed}
    assert by_port[server.port].outcome == "rdp"
    assert by_port[closed].outcome == "refused"


async def test_sweep_stops_when_the_loop_breaks():
    host = loopback_address()
    seen = 0
    sweep = rdprobe.sweep([host], ports="1-200", depth="tcp", timeout=1, concurrency=8)
    async with contextlib.aclosing(sweep) as reports:
        async for _report in reports:
            seen += 1
            if seen == 3:
                break
    assert seen == 3
    leftover = [t for t in asyncio.all_tasks() if "run_sweep" in repr(t.get_coro())]
    assert not leftover


def test_sweep_bad_input_raises_before_probing():
    async def consume() -> None:
        async for _ in rdprobe.sweep(["10.0.0.0/99"]):
            pass

    with pytest.raises(rdprobe.TargetError):
        asyncio.run(consume())


def test_analyze_pcap_reports_each_connection():
    warnings: list[str] = []
    reports = list(rdprobe.analyze_pcap(ZEEK / "rdp-to-ssl.pcap", warnings=warnings))
    assert reports and all(isinstance(r, rdprobe.Report) for r in reports)
    assert all(r.outcome == "rdp" for r in reports)
    assert isinstance(warnings, list)
    with pytest.raises(rdprobe.CaptureError):
        list(rdprobe.analyze_pcap(Path(__file__)))
