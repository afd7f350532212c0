"""The README's GNU parallel recipe, run as written: N shards of one sweep at once, merged.

Loopback only: the targets are rig addresses (127.77.x.y), a few served by emulator listeners,
the rest refused. Asserts that the shard files hold exactly one row per target between them,
and that `rdprobe merge` gives the whole set once with the right outcomes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from rdprobe.emulate.server import serve
from rig.ports import loopback_address

PORT = 3389
RDPROBE = str(Path(sys.executable).with_name("rdprobe"))
SHARDS = 3

pytestmark = pytest.mark.skipif(shutil.which("parallel") is None, reason="GNU parallel missing")


async def _run(argv: list[str], *, stdin: bytes | None = None, timeout: float = 120):
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def loopback_targets(tmp_path):
    hosts = [loopback_address() for _ in range(14)]
    listening = hosts[1:14:2]  # 7 emulated RDP servers, in every shard; the other 7 refuse
    servers = [await serve("win10-nla", h, PORT) for h in listening]
    listing = tmp_path / "targets.txt"
    # the file as a user would keep it: one per line, a comment, and one address twice
    listing.write_text("# lab\n" + "\n".join(hosts) + f"\n{hosts[4]}\n")
    try:
        yield listing, hosts, set(listening)
    finally:
        for s in servers:
            await s.close()


def _rows(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for p in paths for line in p.read_text().splitlines()]


async def _check(tmp_path, hosts, listening, parts):
    rows = _rows(parts)
    assert sorted(r["host"] for r in rows) == sorted(hosts)  # exactly one row per target
    assert all(p.stat().st_size for p in parts)  # every shard had work (14 targets in 3)
    merged_file = tmp_path / "all.jsonl"
    rc, _out, err = await _run([RDPROBE, "merge", *map(str, parts), "-o", str(merged_file)])
    assert rc == 0, err
    merged = _rows([merged_file])
    assert sorted(r["host"] for r in merged) == sorted(hosts)
    assert {r["host"] for r in merged if r["outcome"] == "rdp"} == listening
    assert {r["outcome"] for r in merged if r["host"] not in listening} == {"refused"}
    assert "0 duplicates, 0 conflicts" in err


async def test_gnu_parallel_recipe_shard_k_of_n(tmp_path, loopback_targets):
    listing, hosts, listening = loopback_targets
    out = tmp_path / "out"
    out.mkdir()
    # README: parallel -j4 rdprobe sweep -iL targets.txt --shard {}/4 -o part{}.jsonl ::: 1 2 3 4
    argv = ["parallel", "-j", str(SHARDS), RDPROBE, "sweep", "-iL", str(listing)]
    argv += ["--depth", "x224", "--timeout", "3", "--shard", f"{{}}/{SHARDS}"]
    argv += ["-o", str(out / "part{}.jsonl"), ":::", *map(str, range(1, SHARDS + 1))]
    rc, _stdout, err = await _run(argv)
    # every shard holds refused targets, so every sweep exits 1 (problems found), and GNU
    # parallel exits with the number of jobs that did not exit 0
    assert rc == SHARDS, err
    parts = sorted(out.glob("part*.jsonl"))
    assert [p.name for p in parts] == [f"part{k}.jsonl" for k in range(1, SHARDS + 1)]
    await _check(tmp_path, hosts, listening, parts)


async def test_gnu_parallel_shard_auto_reads_its_sequence_number(tmp_path, loopback_targets):
    listing, hosts, listening = loopback_targets
    out = tmp_path / "out"
    out.mkdir()
    # README: seq 4 | parallel rdprobe sweep -iL targets.txt --shard auto --shards 4 -o part{}.jsonl
    argv = ["parallel", "-j", str(SHARDS), RDPROBE, "sweep", "-iL", str(listing)]
    argv += ["--depth", "x224", "--timeout", "3", "--shard", "auto", "--shards", str(SHARDS)]
    argv += ["-o", str(out / "part{}.jsonl")]
    seq = "".join(f"{k}\n" for k in range(1, SHARDS + 1)).encode()
    rc, _stdout, err = await _run(argv, stdin=seq)
    assert rc == SHARDS, err  # as above: each shard's sweep found refused targets
    await _check(tmp_path, hosts, listening, sorted(out.glob("part*.jsonl")))
