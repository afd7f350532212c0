"""End to end: `rdprobe sweep` over a loopback range with emulated and plain listeners (and a
real xrdp when installed), the rest refused; shards merged back with `rdprobe merge`."""

from __future__ import annotations

import asyncio
import csv
import ipaddress
import json
import random
import sys

import pytest

from rdprobe.emulate.server import serve

CONFIRM = bytes.fromhex("030000130ed00000123400020f080001000000")
CLI = """
import sys
from rdprobe.cli import main
sys.argv[0] = "rdprobe"
main()
"""
PORT = 3389


async def run_cli(*args: str, timeout: float = 90) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out, err


async def _plain_confirm(reader, writer) -> None:
    try:
        await asyncio.wait_for(reader.read(1024), 5)
        writer.write(CONFIRM)
        await writer.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


def _block() -> list[str]:
    base = ipaddress.IPv4Address(f"127.77.{random.randint(1, 250)}.0")
    return [str(base + i) for i in range(16)]


async def test_sweep_loopback_range_with_listeners(tmp_path):
    hosts = _block()
    emulated = {hosts[2]: "win10-nla", hosts[5]: "win2008r2-tls", hosts[9]: "rdp-only"}
    plain = [hosts[11], hosts[14]]
    started = [await serve(p, h, PORT) for h, p in emulated.items()]
    servers = [await asyncio.start_server(_plain_confirm, h, PORT) for h in plain]
    try:
        out, table = tmp_path / "s.jsonl", tmp_path / "s.csv"
        code, stdout, err = await run_cli(
            "sweep",
            f"{hosts[0]}/28",
            "--depth",
            "x224",
            "--timeout",
            "3",
            "-o",
            str(out),
            "--csv",
            str(table),
        )
        h1, h2 = sorted([f"{hosts[0]}-{hosts[7]}", f"{hosts[8]}-{hosts[15]}"])
        shards = []
        for k in (1, 2):
            shard_file = tmp_path / f"shard{k}.jsonl"
            shards.append(str(shard_file))
            rc, _, shard_err = await run_cli(
                "sweep", h1, h2, "--depth", "x224", "--shard", f"{k}/2", "-o", str(shard_file)
            )
            assert rc == 1, shard_err.decode()  # refused ports among the rows: exit 1, like check
        rc, merged_out, merge_err = await run_cli("merge", *shards)
    finally:
        for s in servers:
            s.close()
        for em in started:
            await em.close()
    assert code == 1, err.decode()  # refused ports among the rows
    assert stdout == b""  # rows went to the files; the summary to stderr
    assert b"by outcome" in err
    rows = {r["host"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(rows) == sorted(hosts)
    listening = set(emulated) | set(plain)
    for host, r in rows.items():
        if host in listening:
            assert r["outcome"] == "rdp", (host, r["outcome"])
            assert r["setting"] is not None and r["setting"]["security_layer"]
        else:
            assert r["outcome"] == "refused", (host, r["outcome"])
    assert rows[hosts[9]]["setting"]["security_layer"] == "RDP"
    cells = list(csv.DictReader(table.open()))
    assert {c["host"]: c["outcome"] for c in cells} == {h: r["outcome"] for h, r in rows.items()}
    assert {c["security_layer"] for c in cells if c["host"] in listening} >= {"RDP"}
    # two shards, merged, are the whole set once
    assert rc == 0, merge_err.decode()
    merged = [json.loads(x) for x in merged_out.decode().splitlines()]
    assert sorted(r["host"] for r in merged) == sorted(hosts)
    assert {r["host"] for r in merged if r["outcome"] == "rdp"} == listening
    assert b"0 conflicts" in merge_err


async def test_bad_targets_one_line_usage_error():
    code, out, err = await run_cli("sweep", "127.0.0.1", "10.0.0.0/33")
    assert code == 2 and out == b""
    assert err.decode().strip() == "rdprobe: error: '10.0.0.0/33' is not a valid CIDR block"


@pytest.mark.servers
async def test_sweep_finds_a_real_xrdp(tmp_path):
    from rig import require_binaries
    from rig.xrdp import start_xrdp

    require_binaries("xrdp", "openssl")
    hosts = _block()
    em = await serve("win10-nla", hosts[3], PORT)
    try:
        with start_xrdp(tmp_path, address=hosts[6], port=PORT):
            code, out, err = await run_cli(
                "sweep", f"{hosts[0]}-{hosts[7]}", "--depth", "x224", "--json"
            )
    finally:
        await em.close()
    assert code == 1, err.decode()  # refused hosts among the rows: exit 1
    rows = {r["host"]: r for r in map(json.loads, out.decode().splitlines())}
    assert sorted(rows) == sorted(hosts[:8])
    assert {h for h, r in rows.items() if r["outcome"] == "rdp"} == {hosts[3], hosts[6]}
    assert rows[hosts[6]]["setting"]["security_layer"]
