#!/usr/bin/env python3
"""Benchmark `rdprobe check` against nmap on the real servers of the test rig (not a test).

Starts, on loopback addresses handed out by tests/rig (127.77.x.y): an xrdp in negotiate mode,
an xrdp in tls mode, a FreeRDP shadow server with NLA; and takes one address where nothing
listens (a refused port, timed first, before the servers start). For each, times whole
commands, spawn to exit, each run ``--runs`` times (``--refused-runs`` for the refused port;
median kept, runs of the two tools interleaved so both see the same machine load):

- ``rdprobe check HOST --depth full`` against
  ``nmap -Pn -p3389 --script rdp-enum-encryption,rdp-ntlm-info,ssl-cert HOST``;
- on the refused port, ``rdprobe check HOST`` against ``nmap -Pn -p3389 HOST``.

Prints each median and the ratio rdprobe/nmap (goal: <= 0.5 on the servers, <= 1.0 refused).

rdprobe is timed as users get it: a wheel built from this tree (``pip wheel``) installed into a
throwaway venv in a temporary directory, whose console script runs it (the dependencies come from
the running interpreter's site-packages through a .pth file). An editable install (``pip install
-e``) adds its import hook to every start-up (about 12 ms), which no user pays; ``--editable``
times the running interpreter's ``rdprobe`` instead.
Linux and root only (the rig).
Usage: python3 scripts/bench_check.py [--runs N] [--refused-runs N] [--editable]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from wheel_venv import installed_python  # noqa: E402

from rig import server_pool  # noqa: E402
from rig.ports import loopback_address  # noqa: E402
from rig.shadow import start_shadow  # noqa: E402
from rig.xrdp import start_xrdp  # noqa: E402

PORT = 3389
NMAP_SCRIPTS = "rdp-enum-encryption,rdp-ntlm-info,ssl-cert"
CHILD_LIMIT_S = 120


def timed(argv: list[str]) -> tuple[float, int, str]:
    """(seconds, exit code, stdout) of one whole command."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_LIMIT_S)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, -1, ""
    return time.perf_counter() - start, proc.returncode, proc.stdout


#: The rdprobe command timed: the editable one beside this interpreter, or the installed wheel's.
RDPROBE_EXE: list[str] = []


def editable_exe() -> list[str]:
    exe = Path(sys.executable).with_name("rdprobe")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rdprobe"]


def installed_exe(work: Path) -> list[str] | None:
    """The console script of a wheel of this tree installed under ``work`` (scripts/wheel_venv.py)."""
    python = installed_python(ROOT, work)
    return None if python is None else [str(python.with_name("rdprobe"))]


def rdprobe(*args: str) -> list[str]:
    return [*RDPROBE_EXE, "check", *args]


#: What each server's full check must have found, or its time means nothing (a fast failure).
EXPECTED = {
    "xrdp negotiate": (("tls", "version"), ("tls_versions", "accepted"), ("mcs", "server_data")),
    "xrdp tls": (("tls", "version"), ("tls_versions", "accepted")),
    "shadow NLA": (("tls", "version"), ("nla", "challenge")),
}


def verify(name: str, host: str) -> bool:
    """One `check --json` run: every stage fact the timing runs should have produced is there."""
    _t, _rc, out = timed(rdprobe(f"{host}:{PORT}", "--depth", "full", "--json"))
    try:
        stages = json.loads(out.splitlines()[0])["stages"]
    except (IndexError, KeyError, ValueError):
        print(f"  {name}: no JSON report from rdprobe check")
        return False
    missing = [f"{s}.{k}" for s, k in EXPECTED[name] if not (stages.get(s) or {}).get(k)]
    if missing:
        print(f"  {name}: rdprobe check found no {', '.join(missing)}")
    return not missing


def compare(name: str, ours: list[str], theirs: list[str], runs: int, goal: float) -> float:
    """Interleaved runs of both (after one uncounted warm-up run each: the first start reads
    everything from disk); prints and returns the ratio of the medians."""
    timed(ours)
    timed(theirs)
    mine, nmaps = [], []
    for _ in range(runs):
        t, rc, _out = timed(ours)
        if rc < 0:
            print(f"  {name}: rdprobe did not finish in {CHILD_LIMIT_S} s")
        mine.append(t)
        t, _rc, _out_n = timed(theirs)
        nmaps.append(t)
    ratio = statistics.median(mine) / statistics.median(nmaps)
    print(
        f"  {name:<22} rdprobe {statistics.median(mine):6.3f} s  nmap {statistics.median(nmaps):6.3f} s"
        f"  ratio {ratio:5.2f}  (goal <= {goal})  runs: rdprobe "
        + " ".join(f"{t:.2f}" for t in mine)
        + " / nmap "
        + " ".join(f"{t:.2f}" for t in nmaps)
    )
    return ratio


def main() -> int:
    # the children inherit it: a certificate name is never sent to a DNS server off this machine
    os.environ["RDPROBE_NAME_LOOKUP"] = "local"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--refused-runs",
        type=int,
        default=31,
        help="runs of the refused-port row (each takes ~0.1 s: more runs steady its median)",
    )
    parser.add_argument(
        "--editable", action="store_true", help="time this interpreter's (editable) rdprobe"
    )
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("nmap") is None:
        print("needs root (the rig) and nmap")
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-check-"))
    ratios: dict[str, float] = {}
    ok = False
    try:
        installed = None if args.editable else installed_exe(work)
        RDPROBE_EXE[:] = installed or editable_exe()
        how = "a wheel installed in a temporary venv" if installed else "the editable install"
        print(f"rdprobe: {how} ({RDPROBE_EXE[0]})")
        # the refused port first, before the servers start: none of them is busy meanwhile
        # (xrdp and the shadow server's X server still work after each full check)
        refused = loopback_address()  # handed out to nobody else, and nothing listens
        print(f"refused port {refused}")
        ratios["refused port"] = compare(
            "refused port",
            rdprobe(f"{refused}:{PORT}"),
            ["nmap", "-Pn", f"-p{PORT}", refused],
            args.refused_runs,
            1.0,
        )
        with server_pool() as servers:
            hosts = {
                "xrdp negotiate": start_xrdp(work, address=loopback_address()),
                "xrdp tls": start_xrdp(work, address=loopback_address(), security_layer="tls"),
                "shadow NLA": start_shadow(work, address=loopback_address(), sec="nla"),
            }
            servers.extend(hosts.values())
            print(f"servers: {', '.join(f'{k} {s.host}' for k, s in hosts.items())}")
            ok = all([verify(name, srv.host) for name, srv in hosts.items()])
            print(f"full checks found every expected stage fact: {'yes' if ok else 'NO'}")
            for name, srv in hosts.items():
                ratios[name] = compare(
                    name,
                    rdprobe(f"{srv.host}:{PORT}", "--depth", "full"),
                    ["nmap", "-Pn", f"-p{PORT}", "--script", NMAP_SCRIPTS, srv.host],
                    args.runs,
                    0.5,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\nresults (rdprobe time / nmap time, median of interleaved runs)")
    for name, ratio in ratios.items():
        goal = 1.0 if name == "refused port" else 0.5
        print(f"  {name:<22} {ratio:5.2f}  {'meets' if ratio <= goal else 'misses'} <= {goal}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
