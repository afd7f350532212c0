"""docs/json-schema.md names every key of real check, sweep and pcap rows (data-driven: the
keys come from the rows, the names from the document, so either may grow)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

from rdprobe.emulate.server import serve
from rig.ports import loopback_address

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs/json-schema.md"
RDPROBE = [sys.executable, "-m", "rdprobe"]
#: Objects whose keys are data (labels, versions, evidence names), not schema: their keys are not
#: looked up in the document, the keys inside their values are.
MAPS = {"answers", "versions", "outcomes", "evidence", "methods", "other_av_pairs"}
#: Evidence holds each finding's own keys (documented in the catalogue, not here).
SKIP = {"evidence"}


def documented() -> set[str]:
    """Every name inside a backticked span (`key`, or `{a, b, c}` listing several)."""
    spans = re.findall(r"`([^`]+)`", DOC.read_text())
    return {name for span in spans for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span)}


def keys_of(value, parent: str = "", out: set[str] | None = None) -> set[str]:
    out = set() if out is None else out
    if isinstance(value, dict):
        for key, item in value.items():
            if parent not in MAPS:
                out.add(key)
            if key not in SKIP:
                keys_of(item, key, out)
    elif isinstance(value, list):
        for item in value:
            keys_of(item, parent, out)
    return out


def run(*args: str) -> list[dict]:
    done = subprocess.run([*RDPROBE, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode in (0, 1), done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


async def live_rows() -> list[dict]:
    host = loopback_address()
    profiles = ("win-tls-selfsigned", "win2003-legacy", "http", "flapping", "drip",
                "session-valid-client", "session-denied")  # fmt: skip
    servers = [await serve(p, host, 0) for p in profiles]
    udp = await serve("rdpudp", host, 0, udp=True)
    try:
        targets = [f"{host}:{s.port}" for s in servers]
        rows = await asyncio.to_thread(run, "check", *targets, "--json", "--timeout", "2")
        rows += await asyncio.to_thread(
            run, "check", f"{host}:{servers[3].port}", "--json", "--repeat", "3", "--depth", "x224"
        )
        rows += await asyncio.to_thread(
            run, "check", f"{host}:{udp.port}", "--udp", "--json", "--timeout", "2"
        )
        ports = ",".join(str(s.port) for s in servers[:2]) + ",1"
        rows += await asyncio.to_thread(run, "sweep", host, "--ports", ports, "--json")
    finally:
        for s in [*servers, udp]:
            await s.close()
    return rows


def test_every_key_of_real_rows_is_documented():
    rows = asyncio.run(live_rows())
    rows += run("pcap", *map(str, sorted((ROOT / "captures/zeek").glob("*.pcap"))), "--json")
    seen = set().union(*(keys_of(r) for r in rows))
    # the rows do exercise the blocks the document describes
    assert {"tls", "tls_versions", "mcs", "udp", "repeat", "capture", "connection"} <= seen
    missing = sorted(seen - documented())
    assert not missing, f"keys in real rows that docs/json-schema.md does not name: {missing}"
    outcomes = {r["outcome"] for r in rows}
    doc = DOC.read_text()
    assert all(f"`{o}`" in doc for o in outcomes), outcomes


def test_top_level_keys_of_the_table_are_in_check_rows():
    (row,) = run("check", "127.0.0.1:1", "--json", "--timeout", "1")
    table = re.findall(r"^\| `([a-z_]+)`", DOC.read_text(), flags=re.M)
    only_some = {"capture", "connection", "demo_profile"}
    assert set(table) - only_some <= set(row), set(table) - set(row)
