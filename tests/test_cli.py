"""The command line as a user meets it: exit codes, one-line errors, JSON, never a traceback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from rdprobe.emulate.server import serve

RDPROBE = [sys.executable, "-m", "rdprobe"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RDPROBE, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args",
    [
        ["check", "host:99999"],
        ["check", "[::1"],
        ["check", "bad host"],
        ["check", "a..b:x"],
        ["check", "127.0.0.1", "--ports", "10-1"],
        ["check", "127.0.0.1", "--depth", "deep"],
        ["check", "127.0.0.1", "--resolve", "nonsense"],
        ["check", "127.0.0.1", "--ca-file", "/nonexistent/ca.pem"],
        ["check", "127.0.0.1", "--timeout", "-1"],
        ["emulate", "--profile", "no-such-profile"],
        ["emulate", "--listen", "127.0.0.1:notaport"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_without_traceback(args):
    done = run(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_bad_target_is_one_line():
    done = run("check", "host:0")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "outside 1-65535" in done.stderr


def test_refused_exits_1_with_json():
    done = run("check", "127.0.0.1:1", "--json", "--timeout", "1")
    assert done.returncode == 1
    (line,) = done.stdout.splitlines()
    row = json.loads(line)
    assert row["schema"] == "rdprobe.report/2"
    assert row["outcome"] == "refused"
    assert [f["id"] for f in row["findings"]] == ["tcp.refused"]
    assert row["findings"][0]["fix"] and row["findings"][0]["cause"]


def _serve_and_check(profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    async def main() -> subprocess.CompletedProcess[str]:
        async with await serve(profile, "127.0.0.1", 0) as server:
            return await asyncio.to_thread(
                run, "check", f"127.0.0.1:{server.port}", "--timeout", "1.5", *args
            )

    return asyncio.run(main())


def test_nla_server_exits_0_and_json_carries_the_setting():
    done = _serve_and_check("win10-nla", "--json", "--depth", "x224")
    assert done.returncode == 0, done.stdout
    row = json.loads(done.stdout)
    assert row["outcome"] == "rdp" and row["worst"] == "info"
    assert row["setting"]["nla_required"] is True
    primary = row["attempts"][0]
    assert primary["label"] == "SSL|HYBRID|HYBRID_EX"
    assert primary["tpdu"]["negotiation"]["selected_name"] == "HYBRID_EX"
    assert primary["tpdu"]["src_ref"] == 0x1234


def test_human_report_names_the_conflict():
    done = _serve_and_check("ssh")
    assert done.returncode == 1
    assert "Port conflict: SSH" in done.stdout
    assert "netstat -a -o" in done.stdout


def test_ports_finds_where_rdp_moved():
    async def main() -> subprocess.CompletedProcess[str]:
        async with await serve("win2012-negotiate", "127.0.0.1", 0) as server:
            return await asyncio.to_thread(
                run,
                "check",
                "127.0.0.1",
                "--ports",
                f"1,{server.port}",
                "--json",
                "--depth",
                "x224",
                "--timeout",
                "1.5",
            )

    done = asyncio.run(main())
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["refused", "rdp"]
    assert any(f["id"] == "rdp.found_elsewhere" for r in rows for f in r["findings"])


def test_demo_runs_every_profile():
    done = run("demo", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    by_profile = {r["demo_profile"]: r for r in rows}
    assert by_profile["win10-nla"]["setting"]["nla_required"] is True
    assert by_profile["accept-reset"]["outcome"] == "reset"
    assert by_profile["http"]["service"]["name"] == "HTTP"
    assert any(
        f["id"] == "rdpsec.corrupt_certificate"
        for f in by_profile["corrupt-certificate"]["findings"]
    )
    assert by_profile["rdpudp"]["stages"]["udp"]["outcome"] == "synack"


def test_version_is_the_one_version():
    from rdprobe._version import __version__

    done = run("--version")
    assert done.returncode == 0
    assert done.stdout == f"rdprobe {__version__}\n"
    # the version in the package metadata is read from the same place
    from importlib.metadata import version

    assert version("rdprobe") == __version__


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["sweep", "--help"]])
def test_help_loads_no_prober_tls_or_rich(args):
    """Start-up stays fast because help builds the commands without the heavy modules."""
    probe = (
        "import sys\n"
        "sys.argv = ['rdprobe', *sys.argv[1:]]\n"
        "from rdprobe.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('asyncio', 'ssl', 'cryptography', 'rich') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
    )
    assert "Usage: rdprobe" in done.stdout
    assert done.stderr.endswith("HEAVY="), done.stderr


def test_help_shows_v6_brackets_and_no_bool_metavar():
    done = run("check", "--help")
    assert "[v6addr]:port" in done.stdout
    assert "<bool>" not in done.stdout
    assert "--udp " in done.stdout
