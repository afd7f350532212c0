"""The sweep scheduler: one row per target whatever happens, limits, retries, fd exhaustion,
Ctrl-C and resume. Traffic only to 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.live.check import CheckOptions
from rdprobe.live.target import Target
from rdprobe.sweep.resume import load_done, prepare_append
from rdprobe.sweep.runner import Gate, SweepOptions, SweepStats, fd_exhausted, run_sweep

CONFIRM = bytes.fromhex("030000130ed00000123400020f080001000000")
CLI = """
import resource, sys
limit = int(sys.argv.pop(1))
if limit:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from rdprobe.cli import main
sys.argv[0] = "rdprobe"
main()
"""


def cli(*args: str, fd_limit: int = 0) -> list[str]:
    return [sys.executable, "-c", CLI, str(fd_limit), *args]


def report(target: Target, tcp: TcpOutcome, error: str | None = None):
    now = datetime.now(UTC)
    obs = TargetObservation(target.host, target.port, target.host, now)
    obs.attempts.append(Attempt("SSL|HYBRID|HYBRID_EX", 11, tcp, error, 0.1))
    return classify(obs, now)


def targets(n: int, host: str | None = None) -> list[Target]:
    if host is not None:
        return [Target(host, 1000 + i, True) for i in range(n)]
    return [Target(f"127.9.{i // 250}.{i % 250 + 1}", 3389, True) for i in range(n)]


async def test_one_row_per_target_even_when_probes_raise():
    calls: list[Target] = []

    async def probe(t: Target, opts: CheckOptions):
        calls.append(t)
        await asyncio.sleep(random.random() / 500)
        if t.port % 3 == 0:
            raise ValueError("boom")
        if t.port % 7 == 0:
            return []
        return [report(t, TcpOutcome.REFUSED)]

    rows: list[dict] = []
    ts = targets(200, host="127.0.0.1")
    stats = await run_sweep(ts, SweepOptions(concurrency=17, per_host=5), rows.append, probe=probe)
    assert sorted(r["target"] for r in rows) == sorted(str(t) for t in ts)
    assert len(calls) == 200 and stats.rows == 200
    raised = [r for r in rows if r["port"] % 3 == 0 or r["port"] % 7 == 0]
    assert raised and all(r["outcome"] == "error" for r in raised)
    assert all("internal error" in r["attempts"][0]["error"] for r in raised)
    assert stats.probe_errors == len(raised)
    assert stats.by_outcome["refused"] == 200 - len(raised)


async def test_concurrency_and_per_host_limits():
    active: dict[str, int] = {}
    peak = {"all": 0, "host": 0}

    async def probe(t: Target, opts: CheckOptions):
        active[t.host] = active.get(t.host, 0) + 1
        peak["all"] = max(peak["all"], sum(active.values()))
        peak["host"] = max(peak["host"], active[t.host])
        await asyncio.sleep(0.002)
        active[t.host] -= 1
        return [report(t, TcpOutcome.REFUSED)]

    many_hosts = targets(120)
    await run_sweep(many_hosts, SweepOptions(concurrency=10), lambda r: None, probe=probe)
    assert peak == {"all": 10, "host": 1}
    peak.update(all=0, host=0)
    one_host = targets(60, host="127.0.0.1")
    await run_sweep(one_host, SweepOptions(concurrency=50, per_host=4), lambda r: None, probe=probe)
    assert peak["host"] == 4


async def test_rate_is_smooth():
    """Starts follow the schedule 1/rate apart: never more than one start ahead of it beyond
    what the event loop's own stalls in the same run explain (a loaded 2-core machine stalls
    the loop; the starts due meanwhile then come together), and the whole run is neither far
    faster nor far slower than the rate. Measured against the interval and the loop's lag."""
    starts: list[float] = []
    rate, count = 20.0, 20
    interval = 1 / rate
    lag = 0.0
    running = True

    async def probe(t: Target, opts: CheckOptions):
        starts.append(time.monotonic())
        return [report(t, TcpOutcome.REFUSED)]

    async def watch_loop() -> None:
        nonlocal lag
        while running:
            before = time.monotonic()
            await asyncio.sleep(0.005)
            lag = max(lag, time.monotonic() - before - 0.005)

    watcher = asyncio.create_task(watch_loop())
    await run_sweep(
        targets(count), SweepOptions(rate=rate, concurrency=50), lambda r: None, probe=probe
    )
    running = False
    await watcher
    assert len(starts) == count
    ahead = max(
        (j - i) * interval - (starts[j] - starts[i])
        for i, j in itertools.combinations(range(count), 2)
    )
    assert ahead <= interval + 2 * lag, (
        f"starts ran {ahead / interval:.2f} intervals ahead (loop lag {lag * 1000:.0f} ms)"
    )
    span = (starts[-1] - starts[0]) / ((count - 1) * interval)
    assert 1 - (interval + 2 * lag) / ((count - 1) * interval) < span < 3.0, span


async def test_timeouts_retried_and_nothing_else():
    calls: dict[str, int] = {}

    async def probe(t: Target, opts: CheckOptions):
        calls[str(t)] = calls.get(str(t), 0) + 1
        kind = TcpOutcome.TIMEOUT if t.port % 2 else TcpOutcome.REFUSED
        if t.port == 1003 and calls[str(t)] == 2:
            kind = TcpOutcome.REFUSED  # answered on the retry
        return [report(t, kind, "no answer" if kind is TcpOutcome.TIMEOUT else None)]

    rows: list[dict] = []
    ts = targets(6, host="127.0.0.1")
    stats = await run_sweep(ts, SweepOptions(retries=2), rows.append, probe=probe)
    assert calls == {
        "127.0.0.1:1000": 1,
        "127.0.0.1:1001": 3,
        "127.0.0.1:1002": 1,
        "127.0.0.1:1003": 2,
        "127.0.0.1:1004": 1,
        "127.0.0.1:1005": 3,
    }
    assert {r["target"]: r["outcome"] for r in rows}["127.0.0.1:1003"] == "refused"
    assert stats.timeout_retries == 2 + 1 + 2 and len(rows) == 6


async def test_fd_exhaustion_backs_off_and_retries_the_same_target():
    failures = {"left": 30}
    emfile = "[Errno 24] Too many open files"

    async def probe(t: Target, opts: CheckOptions):
        await asyncio.sleep(0)
        if failures["left"] > 0:
            failures["left"] -= 1
            return [report(t, TcpOutcome.ERROR, emfile)]
        return [report(t, TcpOutcome.REFUSED)]

    rows: list[dict] = []
    stats = await run_sweep(targets(40), SweepOptions(concurrency=20), rows.append, probe=probe)
    assert len(rows) == 40 and all(r["outcome"] == "refused" for r in rows)
    assert stats.fd_backoffs == 30
    assert fd_exhausted(report(Target("h", 1, False), TcpOutcome.ERROR, "[WinError 10024] x"))
    assert not fd_exhausted(report(Target("h", 1, False), TcpOutcome.ERROR, "[Errno 22] x"))


async def test_gate_shrinks_and_grows_back():
    gate = Gate(100)
    for _ in range(40):
        await gate.acquire()
    gate.shrink()
    assert gate.limit == 30
    for _ in range(40):
        gate.release()
    for _ in range(2000):
        gate.grow()
    assert gate.limit == 100


async def test_cancel_keeps_every_finished_row():
    async def probe(t: Target, opts: CheckOptions):
        await asyncio.sleep(0.001 * (t.port % 10))
        return [report(t, TcpOutcome.REFUSED)]

    rows: list[dict] = []
    stats = SweepStats()
    task = asyncio.create_task(
        run_sweep(
            targets(5000, host="127.0.0.1"),
            SweepOptions(concurrency=8, per_host=8),
            rows.append,
            stats=stats,
            probe=probe,
        )
    )
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stats.interrupted and 0 < len(rows) == stats.rows < 5000
    assert len({r["target"] for r in rows}) == len(rows)


async def test_real_refused_loopback_ports():
    rows: list[dict] = []
    ts = [Target("127.0.0.1", p, True) for p in range(20400, 20420)]
    opts = SweepOptions(check=CheckOptions.with_timeout(2.0, depth="x224"), concurrency=8)
    await run_sweep(ts, opts, rows.append)
    assert sorted(r["port"] for r in rows) == list(range(20400, 20420))
    assert {r["outcome"] for r in rows} == {"refused"}


def test_resume_reads_a_truncated_file(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"host": f"10.0.0.{i}", "port": 3389, "target": f"10.0.0.{i}:3389"} for i in range(5)]
    rows.append({"host": "name", "port": 3390})
    path.write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + 'not json\n{"host": "10.0.0.9", "po'
    )
    state = load_done(path)
    assert state.rows == 6 and state.bad_lines == 1 and state.partial
    assert Target("10.0.0.4", 3389, True) in state.done
    assert Target("10.0.0.4", 3390, True) not in state.done
    assert Target("10.0.0.9", 3389, True) not in state.done
    assert Target("name", 3390, False) in state.done and state.done.count() == 6
    prepare_append(path, state)
    assert path.read_text().endswith("not json\n")


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sigint_midway_then_resume_gives_one_row_per_target(tmp_path):
    out = tmp_path / "sweep.jsonl"
    args = ["sweep", "127.0.0.1", "--ports", "20000-20300", "--depth", "x224", "-o", str(out)]
    proc = subprocess.Popen(
        cli(*args, "--rate", "25"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )  # 301 targets at 25/s take 12 s: the signal, sent after 40 rows, lands midway
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 40:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 130, err.decode()
    assert b"--resume" in err
    first = _rows(out)
    assert 40 <= len(first) < 301
    with out.open("a") as fh:  # as if the kill had cut the last line short
        fh.write('{"schema": "rdprobe.report/2", "target": "127.0.0.1:2')
    done = subprocess.run(
        cli(*args, "--resume", str(out)), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr.decode()  # refused ports: exit 1, like check
    assert f"{len(first)} skipped".encode() in done.stderr
    rows = _rows(out)
    assert sorted(r["port"] for r in rows) == list(range(20000, 20301))
    assert rows[: len(first)] == first


async def _confirm_after(delay: float, reader, writer) -> None:
    try:
        await asyncio.wait_for(reader.read(1024), 5)
        await asyncio.sleep(delay)
        writer.write(CONFIRM)
        await writer.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


async def test_fd_exhaustion_in_a_low_ulimit_process(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("needs resource.setrlimit (POSIX)")
    first = ipaddress.IPv4Address("127.88.1.1")
    hosts = [str(first + i) for i in range(300)]
    port = 33389
    servers = []
    try:
        for host in hosts:
            servers.append(
                await asyncio.start_server(
                    lambda r, w: _confirm_after(0.05, r, w), host, port, backlog=64
                )
            )
        out = tmp_path / "fd.jsonl"
        argv = cli(
            "sweep",
            f"{hosts[0]}-{hosts[-1]}",
            "--ports",
            str(port),
            "--depth",
            "x224",
            "--concurrency",
            "500",
            "--timeout",
            "10",
            "-o",
            str(out),
            fd_limit=64,
        )
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 90)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        for s in servers:
            s.close()
    rows = _rows(out)
    # the exit rule of check: 0 only when every row is RDP with nothing of warning or worse
    assert proc.returncode == (0 if {r["worst"] for r in rows} == {"info"} else 1), err.decode()
    assert sorted(r["host"] for r in rows) == sorted(hosts)
    assert {r["outcome"] for r in rows} == {"rdp"}, {r["outcome"] for r in rows}
    assert b"slow-downs at the file-descriptor limit" in err


async def test_host_limits_hold_through_the_switch_to_a_gate_and_back():
    """HostLimits counts a host's probes until it is full, then queues the rest on a Gate: the
    limit holds, every waiter gets its turn (also after one is cancelled) and nothing is left."""
    import random

    from rdprobe.sweep.runner import HostLimits

    limits = HostLimits(3)
    inside: dict[str, int] = {}
    peak: dict[str, int] = {}
    rng = random.Random(7)

    async def probe(host: str) -> None:
        await limits.acquire(host)
        try:
            inside[host] = inside.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), inside[host])
            await asyncio.sleep(rng.random() / 200)
            inside[host] -= 1
        finally:
            limits.release(host)

    tasks = [asyncio.create_task(probe(f"h{i % 4}")) for i in range(200)]
    await asyncio.sleep(0.001)
    tasks[-1].cancel()  # a waiter cancelled while queued
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 1
    assert peak == {f"h{i}": 3 for i in range(4)}
    assert len(limits) == 0 and not limits._active and not limits._gates


@pytest.mark.parametrize("depth", ["tcp", "x224", "full"])
async def test_first_connect_on_the_loop_gives_the_probers_rows(depth):
    """The sweep's first connect (rdprobe.sweep.first) judges a refusal at once and hands a
    connection to the prober: the rows are those of the prober alone, whatever the port does."""
    from rdprobe.emulate.server import serve
    from rdprobe.live.check import CheckOptions, probe_address
    from rdprobe.live.target import Target
    from rdprobe.live.timing import Timeouts
    from rdprobe.render.jsonl import report_dict
    from rdprobe.sweep.runner import probe_target
    from rig.ports import loopback_address

    def timeless(value):
        if isinstance(value, dict):
            return {k: timeless(v) for k, v in value.items()
                    if k != "started" and not k.endswith("_ms") and k != "elapsed_s"}  # fmt: skip
        if isinstance(value, list):
            return [timeless(v) for v in value]
        return value

    opts = CheckOptions(timeouts=Timeouts.from_timeout(1), depth=depth, session=False)
    rdp, silent, refused = loopback_address(), loopback_address(), loopback_address()
    async with await serve("win2012-negotiate", rdp, 3389), await serve("silent", silent, 3389):
        for host in (rdp, silent, refused):
            target = Target(host, 3389, is_literal=True)
            (new,) = await probe_target(target, opts)
            old = await probe_address(target, host, opts)
            assert timeless(report_dict(new)) == timeless(report_dict(old)), host
            assert new.observation.started <= old.observation.started
    assert (new.outcome, old.outcome) == ("refused", "refused")
