"""`sweep --workers N`: the target set split over N processes still gives one row per target:port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from rdprobe.emulate.server import serve
from rdprobe.live.target import Target
from rdprobe.sweep.workers import share


def test_shares_partition_the_order():
    targets = [Target(f"127.9.0.{i}", 3389, True) for i in range(1, 101)]
    shares = [list(share(targets, i, 3)) for i in range(3)]
    assert sorted(t.host for s in shares for t in s) == sorted(t.host for t in targets)
    assert all(abs(len(s) - 100 / 3) < 1 for s in shares)


def test_two_workers_one_row_per_target(tmp_path):
    out = tmp_path / "rows.jsonl"

    async def main() -> subprocess.CompletedProcess[str]:
        async with await serve("win2012-negotiate", "127.8.1.1", 3389):
            argv = [sys.executable, "-m", "rdprobe", "sweep", "127.8.0.0/22", "--depth", "x224",
                    "--workers", "2", "--timeout", "2", "-o", str(out)]  # fmt: skip
            return await asyncio.to_thread(
                subprocess.run, argv, capture_output=True, text=True, timeout=120
            )

    done = asyncio.run(main())
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    targets = [r["target"] for r in rows]
    assert len(targets) == 1024 and len(set(targets)) == 1024
    by_target = {r["target"]: r for r in rows}
    assert by_target["127.8.1.1:3389"]["outcome"] == "rdp"
    assert sum(r["outcome"] == "refused" for r in rows) == 1023
    assert "1024 target:ports" in done.stderr
