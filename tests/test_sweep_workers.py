"""`sweep --workers N`: the target set split over N processes still gives one row per target:port."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from rdprobe.emulate.server import serve
from rdprobe.sweep.shard import select
from rdprobe.sweep.targets import TargetSet, parse_spec


def test_shares_partition_the_order():
    targets = TargetSet([parse_spec("127.9.0.1-127.9.0.100")], (3389,))
    shares = [list(select(targets, 1, 1, i, 3)) for i in range(3)]
    assert sorted(t.host for s in shares for t in s) == sorted(t.host for t in targets)
    assert all(abs(len(s) - 100 / 3) < 1 for s in shares)
    # within shard 2 of 2: the workers split that shard, not the whole set
    halves = [list(select(targets, 2, 2, i, 3)) for i in range(3)]
    assert sorted(t.host for s in halves for t in s) == sorted(
        t.host for t in select(targets, 2, 2)
    )


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
    assert done.returncode == 1, done.stderr  # 1023 refused: exit 1, like check
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    targets = [r["target"] for r in rows]
    assert len(targets) == 1024 and len(set(targets)) == 1024
    by_target = {r["target"]: r for r in rows}
    assert by_target["127.8.1.1:3389"]["outcome"] == "rdp"
    assert sum(r["outcome"] == "refused" for r in rows) == 1023
    assert "1024 target:ports" in done.stderr


def test_interrupted_workers_then_resume_give_one_row_each(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "rows.jsonl"
    argv = [sys.executable, "-m", "rdprobe", "sweep", "127.12.0.0/18", "--depth", "x224",
            "--workers", "2", "--timeout", "2", "-o", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 200_000):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    first = len(out.read_text().splitlines())
    assert 0 < first < 16384
    done = subprocess.run(
        [*argv[:-2], "--resume", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stderr  # refused targets: exit 1
    targets = [json.loads(line)["target"] for line in out.read_text().splitlines()]
    assert len(targets) == 16384 and len(set(targets)) == 16384


def _timeless(value):
    """A row without what differs between two runs of the same probe: when it started and how
    many milliseconds each step took."""
    if isinstance(value, dict):
        return {
            k: _timeless(v)
            for k, v in value.items()
            if k != "started" and not k.endswith("_ms") and k != "elapsed_s"
        }
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def test_worker_processes_write_the_rows_one_process_writes(tmp_path):
    """The worker path (spec on stdin, rows relayed in batches) and the single-process path give
    the same rows for the same targets: an RDP listener, a refused port, a silent listener."""
    from rig.ports import loopback_address

    rdp_host, silent_host, refused_host = (loopback_address() for _ in range(3))

    async def main() -> dict[int, subprocess.CompletedProcess[str]]:
        async with (
            await serve("win2012-negotiate", rdp_host, 3389),
            await serve("silent", silent_host, 3389),
        ):
            done = {}
            for n in (1, 2):
                argv = [sys.executable, "-m", "rdprobe", "sweep", rdp_host, silent_host,
                        refused_host, "--depth", "x224", "--workers", str(n), "--timeout", "1",
                        "-o", str(tmp_path / f"w{n}.jsonl")]  # fmt: skip
                done[n] = await asyncio.to_thread(
                    subprocess.run, argv, capture_output=True, text=True, timeout=120
                )
            return done

    done = asyncio.run(main())
    rows = {}
    for n, proc in done.items():
        assert proc.returncode == 1, proc.stderr  # a refused port: exit 1
        assert "3 target:ports" in proc.stderr
        lines = (tmp_path / f"w{n}.jsonl").read_text().splitlines()
        rows[n] = {r["target"]: _timeless(r) for r in map(json.loads, lines)}
        assert len(lines) == len(rows[n]) == 3
    assert rows[1] == rows[2]
    # the summary the parent adds up from its workers' counts is the one a single process makes
    assert done[1].stderr.splitlines()[1:] == done[2].stderr.splitlines()[1:]
    assert "refused" in done[2].stderr and "silent" in done[2].stderr
    outcomes = {t: r["outcome"] for t, r in rows[2].items()}
    assert outcomes == {
        f"{rdp_host}:3389": "rdp",
        f"{silent_host}:3389": "silent",
        f"{refused_host}:3389": "refused",
    }


def test_parent_counts_come_from_count_lines_and_uncounted_rows_one_by_one(tmp_path):
    """A worker's batch ends with its count line; rows after the last one (a worker killed
    mid-write) are counted by the parent itself: the summary always matches the rows written."""
    from rdprobe.sweep.summary import Summary, Verdict
    from rdprobe.sweep.tally import ParentRows, Tally
    from rdprobe.sweep.workers import relay

    rows = [{"target": f"127.0.0.{i}:3389", "outcome": "refused", "worst": "error"}
            for i in range(1, 7)] + [{"target": "127.0.0.9:3389", "outcome": "rdp",
            "worst": "info", "setting": {"summary": "NLA required"}}]  # fmt: skip
    tally, data = Tally(), b""
    for row in rows[:4]:
        data += json.dumps(row).encode() + b"\n"
        tally.add(row)
    data += tally.take()  # the batch of four, counted
    data += b"".join(json.dumps(r).encode() + b"\n" for r in rows[4:])  # no count line
    data += b'{"target": "127.0.0.10:3'  # cut mid-row: not a row
    source = tmp_path / "out.bin"
    source.write_bytes(data)
    out = open(tmp_path / "rows.jsonl", "w")
    summary, verdict, counted = Summary(), Verdict(), []

    async def main() -> list[int]:
        code = f"import sys; sys.stdout.buffer.write(open({str(source)!r}, 'rb').read())"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE
        )
        make = lambda: ParentRows([out], [], summary, verdict, lambda n, _o: counted.append(n))  # noqa: E731
        return await relay([proc], make, consumers=True)

    assert asyncio.run(main()) == [0]
    out.close()
    written = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert written == rows  # every whole row once, as it came; no count line, no cut row
    assert counted == [4, 1, 1, 1] and summary.rows == verdict.rows == 7
    assert summary.outcome == {"refused": 6, "rdp": 1}
    assert summary.setting == {"NLA required": 1} and verdict.problem


def test_tally_counts_a_shared_row_as_often_as_it_was_added():
    """A worker's filled lines share their shape's row: counted once per row all the same."""
    from rdprobe.sweep.summary import Summary, Verdict
    from rdprobe.sweep.tally import Tally

    shared = {"outcome": "refused", "worst": "error", "findings": [{"id": "tcp.refused"}]}
    cert = {"outcome": "rdp", "worst": "warning", "setting": {"summary": "TLS"},
            "findings": [{"id": "cert.self_signed"}, {"id": "tls.old"}, {"id": "x"}]}  # fmt: skip
    added = [shared] * 5 + [cert, dict(cert)] + [shared] * 2
    tally, one_by_one, verdict = Tally(), Summary(), Verdict()
    for row in added:
        tally.add(row)
        one_by_one.add(row)
        verdict.add(row)
    counts = json.loads(tally.take()[1:])
    assert counts["summary"] == one_by_one.to_dict()
    assert counts["summary"]["rows"] == 9 and counts["problem"] is verdict.problem is True
    assert json.loads(tally.take()[1:])["summary"]["rows"] == 0  # counting starts over


def test_the_parent_of_workers_never_loads_the_prober(tmp_path):
    """The parent checks options and relays rows: the prober and classifier load in the
    workers only (the parent's start-up is what every worker waits for)."""
    from rig.ports import loopback_address

    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('loaded: %s\\n' % sorted(m for m in ("
        "'rdprobe.analysis.classify', 'rdprobe.live.check', 'rdprobe.sweep.runner') "
        "if m in sys.modules)))\n"
        "from rdprobe.cli import main\n"
        "sys.argv[0] = 'rdprobe'\n"
        "main()\n"
    )
    host = loopback_address()
    out = tmp_path / "rows.jsonl"
    argv = [sys.executable, "-c", code, "sweep", host, "--ports", "1-40", "--depth", "x224",
            "--workers", "2", "--timeout", "1", "-o", str(out)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # refused ports
    assert "loaded: []" in done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["port"] for r in rows) == list(range(1, 41))
