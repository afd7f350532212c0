#!/usr/bin/env python3
"""Benchmark `rdprobe sweep` on loopback against nmap and a bare asyncio floor (not a test).

Target set: 127.1.0.0/16 port 3389. A fixed few hundred addresses are served by emulator
listeners bound to those addresses, one by a real xrdp when it starts (skipped with a note
otherwise), the rest refused. Measured in one run, each tool in its own child process while this
process serves the listeners:

- rdprobe sweep --depth x224 over the /16: targets/s and the child's peak RSS (VmHWM);
- nmap -sT -Pn -n -p3389 --script rdp-enum-encryption over a fixed sample of 200 addresses;
- a bare asyncio loop that connects, sends the X.224 request and reads the reply (the floor).

Prints the ratios rdprobe/nmap and rdprobe/floor and checks that rdprobe found exactly the
listeners. Linux only (wait4, loopback /8). Usage: python3 scripts/bench_sweep.py [--listeners N]
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rdprobe.emulate.server import serve  # noqa: E402

NET = ipaddress.IPv4Network("127.1.0.0/16")
PORT = 3389
CHILD_LIMIT_S = 900
CLI = "import sys\nfrom rdprobe.cli import main\nsys.argv[0] = 'rdprobe'\nmain()\n"
FLOOR = """
import asyncio, sys, time
CR = bytes.fromhex(sys.argv[1])
FIRST, COUNT, CONC, PORT = (int(a) for a in sys.argv[2:6])
async def main():
    it = iter(range(COUNT))
    found = 0
    async def worker():
        nonlocal found
        for i in it:
            v = FIRST + i
            host = f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(host, PORT), 3)
            except (OSError, asyncio.TimeoutError):
                continue
            try:
                w.write(CR)
                if (await asyncio.wait_for(r.read(1024), 3))[:1] == b"\\x03":
                    found += 1
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                w.close()
    await asyncio.gather(*(worker() for _ in range(CONC)))
    print(found)
asyncio.run(main())
"""


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and its children (sweep --workers runs copies of itself), in KiB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{p}/status").read_text())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def run_child(argv: list[str], stdout=subprocess.DEVNULL) -> tuple[float, int, int]:
    """(seconds, exit status, peak RSS in KiB) of one child, timed from spawn to exit."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)

    peak = [0]

    def wait() -> int:
        # the whole tree's RSS, polled (wait4's ru_maxrss would count this process's memory
        # from before the child's exec, and not the sweep's own worker processes)
        deadline = time.monotonic() + CHILD_LIMIT_S
        while time.monotonic() < deadline:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            pid, status, _usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                return status
            time.sleep(0.02)
        proc.kill()
        return os.wait4(proc.pid, 0)[1]

    status = await asyncio.to_thread(wait)
    elapsed = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        print(f"  child failed ({proc.returncode}): {proc.stderr.read()[-800:]!r}")
    return elapsed, proc.returncode, peak[0]


def start_xrdp(address: str, work: Path) -> subprocess.Popen[bytes] | None:
    ini = Path("/etc/xrdp/xrdp.ini")
    if (
        shutil.which("xrdp", path=os.environ.get("PATH", "") + ":/usr/sbin") is None
        or not ini.exists()
    ):
        print("  note: xrdp not installed: no real xrdp in the set")
        return None
    text = ini.read_text()
    text = re.sub(r"(?m)^port=.*$", f"port=tcp://{address}:{PORT}", text, count=1)
    text = re.sub(r"(?m)^LogFile=.*$", f"LogFile={work / 'xrdp.log'}", text)
    text = re.sub(r"(?m)^EnableSyslog=.*$", "EnableSyslog=false", text)
    config = work / "xrdp.ini"
    config.write_text(text)
    proc = subprocess.Popen(
        ["xrdp", "--nodaemon", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((address, PORT), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    print("  note: xrdp did not start listening: benchmark continues without it")
    proc.kill()
    proc.wait(5)
    return None


async def bench_full(
    work: Path, listeners: list[str], emulated: list[str], rng: random.Random, args
) -> tuple[float, int, int, float | None, bool]:
    """Depth full on the RDP listeners only: rdprobe sweep over all of them against nmap
    rdp-enum-encryption on a sample of them (nmap's rate per host does not depend on how many
    it is given). (rdprobe targets/s, rows, peak RSS KiB, nmap targets/s, all judged rdp)."""
    listing = work / "listeners.txt"
    listing.write_text("\n".join(listeners) + "\n")
    out = work / "full.jsonl"
    print(f"rdprobe sweep -iL <{len(listeners)} listeners> --depth full ...")
    argv = [sys.executable, "-c", CLI, "sweep", "-iL", str(listing), "--depth", "full"]
    argv += ["--concurrency", str(args.concurrency), "--timeout", "3", "-o", str(out)]
    t_rd, _rc, rss_kib = await run_child(argv)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ok = len(rows) == len(listeners) and all(r["outcome"] == "rdp" for r in rows)
    rate = len(rows) / t_rd
    print(
        f"  {len(rows)} rows in {t_rd:.2f} s: {rate:,.1f} targets/s, peak RSS {rss_kib / 1024:.1f} MB"
    )
    nmap_rate = None
    if shutil.which("nmap"):
        sample = sorted(rng.sample(emulated, min(args.full_sample, len(emulated))))
        (work / "full-sample.txt").write_text("\n".join(sample) + "\n")
        print(
            f"nmap -sT -Pn -n -p{PORT} --script rdp-enum-encryption on {len(sample)} listeners ..."
        )
        nmap = ["nmap", "-sT", "-Pn", "-n", f"-p{PORT}", "--script", "rdp-enum-encryption"]
        nmap += ["-iL", str(work / "full-sample.txt"), "-oN", str(work / "nmap-full.txt")]
        t_nmap, _rc, _ = await run_child(nmap)
        nmap_rate = len(sample) / t_nmap
        print(f"  {len(sample)} in {t_nmap:.2f} s: {nmap_rate:,.1f} targets/s")
    return rate, len(rows), rss_kib, nmap_rate, ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--full-sample", type=int, default=40, help="nmap hosts at depth full")
    parser.add_argument("--skip-full", action="store_true", help="no depth-full measurement")
    parser.add_argument("--only-full", action="store_true", help="only the depth-full measurement")
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    rng = random.Random(3389)
    offsets = sorted(rng.sample(range(1, NET.num_addresses - 1), args.listeners + 1))
    xrdp_addr = str(NET[offsets.pop(len(offsets) // 2)])
    emulated = [str(NET[o]) for o in offsets]
    print(f"fd limit {fd_limit}; {len(emulated)} emulator listeners in {NET} port {PORT}")
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    servers = [await serve("win2012-negotiate", h, PORT) for h in emulated]
    xrdp = await asyncio.to_thread(start_xrdp, xrdp_addr, work)
    listeners = set(emulated) | ({xrdp_addr} if xrdp else set())
    try:
        if args.only_full:
            full = await bench_full(work, sorted(listeners), emulated, rng, args)
            print(
                f"\nresults\n  rdprobe sweep full : {full[0]:10,.1f} targets/s   peak RSS "
                f"{full[2] / 1024:.1f} MB  all rdp: {full[4]}"
            )
            if full[3]:
                print(
                    f"  nmap (same hosts)  : {full[3]:10,.1f} targets/s   rdprobe full/nmap = "
                    f"{full[0] / full[3]:,.1f}x"
                )
            return 0 if full[4] else 1
        out = work / "sweep.jsonl"
        print(f"rdprobe sweep {NET} --depth x224 --concurrency {args.concurrency} ...")
        argv = [sys.executable, "-c", CLI, "sweep", str(NET), "--depth", "x224"]
        argv += ["--concurrency", str(args.concurrency), "--timeout", "3", "-o", str(out)]
        t_rd, _rc, rss_kib = await run_child(argv)
        found = set()
        rows = 0
        with out.open() as fh:
            for line in fh:
                row = json.loads(line)
                rows += 1
                if row["outcome"] == "rdp":
                    found.add(row["host"])
        rd_rate = rows / t_rd
        print(
            f"  {rows} rows in {t_rd:.2f} s: {rd_rate:,.0f} targets/s, peak RSS {rss_kib / 1024:.1f} MB"
        )

        print("floor: bare asyncio connect + X.224 request + read ...")
        from rdprobe.protocol import x224

        cr = x224.build_request(cookie="rdprobe", requested=11).hex()
        floor_out = work / "floor.txt"
        with floor_out.open("w") as fh:
            t_floor, _, _ = await run_child(
                [
                    sys.executable,
                    "-c",
                    FLOOR,
                    cr,
                    str(int(NET[0])),
                    str(NET.num_addresses),
                    str(args.concurrency),
                    str(PORT),
                ],
                stdout=fh,
            )
        floor_rate = NET.num_addresses / t_floor
        print(
            f"  {NET.num_addresses} in {t_floor:.2f} s: {floor_rate:,.0f} targets/s "
            f"(answered: {floor_out.read_text().strip()})"
        )

        nmap_rate = None
        if shutil.which("nmap"):
            sample = sorted(rng.sample(emulated, 20)) + [
                str(NET[o])
                for o in sorted(rng.sample(range(1, NET.num_addresses - 1), args.sample - 20))
            ]
            listing = work / "sample.txt"
            listing.write_text("\n".join(sample) + "\n")
            print(
                f"nmap -sT -Pn -n -p{PORT} --script rdp-enum-encryption on {len(sample)} addresses ..."
            )
            t_nmap, _rc, _ = await run_child(
                [
                    "nmap",
                    "-sT",
                    "-Pn",
                    "-n",
                    f"-p{PORT}",
                    "--script",
                    "rdp-enum-encryption",
                    "-iL",
                    str(listing),
                    "-oN",
                    str(work / "nmap.txt"),
                ]
            )
            nmap_rate = len(sample) / t_nmap
            print(f"  {len(sample)} in {t_nmap:.2f} s: {nmap_rate:,.1f} targets/s")
        else:
            print("  note: nmap not installed: no nmap comparison")
        full = None
        if not args.skip_full:
            full = await bench_full(work, sorted(listeners), emulated, rng, args)
    finally:
        for s in servers:
            await s.close()
        if xrdp is not None:
            xrdp.terminate()
            xrdp.wait(5)

    print("\nresults")
    print(f"  rdprobe sweep x224 : {rd_rate:10,.0f} targets/s   peak RSS {rss_kib / 1024:.1f} MB")
    print(
        f"  floor (bare loop)  : {floor_rate:10,.0f} targets/s   rdprobe/floor = {rd_rate / floor_rate:.2f} "
        f"(floor is {floor_rate / rd_rate:.2f}x faster)"
    )
    if nmap_rate:
        print(
            f"  nmap rdp-enum-enc. : {nmap_rate:10,.1f} targets/s   rdprobe/nmap = {rd_rate / nmap_rate:,.0f}x"
        )
    if full is not None:
        f_rate, f_rows, f_rss, f_nmap, f_ok = full
        print(
            f"  rdprobe sweep full : {f_rate:10,.1f} targets/s   peak RSS {f_rss / 1024:.1f} MB"
            f"   ({f_rows} listeners, {'every one' if f_ok else 'NOT every one'} judged rdp)"
        )
        if f_nmap:
            print(
                f"  nmap (same hosts)  : {f_nmap:10,.1f} targets/s   rdprobe full/nmap = "
                f"{f_rate / f_nmap:,.1f}x"
            )
    exact = found == listeners
    print(
        f"  listeners {len(listeners)} (xrdp {'yes' if xrdp else 'no'}), rdprobe found {len(found)}: "
        + (
            "exactly the listeners"
            if exact
            else f"MISMATCH missing {sorted(listeners - found)[:5]} extra {sorted(found - listeners)[:5]}"
        )
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if exact and rows == NET.num_addresses else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
