#!/usr/bin/env python3
"""Benchmark `rdprobe sweep` on loopback against nmap and a bare asyncio floor (not a test).

Target set: 127.1.0.0/16 port 3389. A fixed few hundred addresses are served by emulator
listeners bound to those addresses, one by a real xrdp when it starts (skipped with a note
otherwise), the rest refused. The emulator profile (win2012-tls-nla by default) answers every
stage a real Windows listener answers: TLS (1.0-1.2), the NTLM challenge of NLA, Standard RDP
Security's MCS answers; the depth-full rows are checked for a TLS version, an NTLM challenge and
no tls.handshake_failed. The listeners are served by this process, or by --emulator-procs N
processes of their own; the CPU they used during each measurement is printed (loopback: they
share the cores with the tool measured). Measured in one run, each tool in its own child process:

- rdprobe sweep --depth x224 over the /16: targets/s and the child's peak RSS (VmHWM);
- nmap -sT -Pn -n -p3389 --script rdp-enum-encryption over a fixed sample of 200 addresses;
- a bare asyncio loop that connects, sends the X.224 request and reads the reply (the floor).

Prints the ratios rdprobe/nmap and rdprobe/floor and checks that rdprobe found exactly the
listeners; at depth full also the CPU per target of each side and the most targets/s the
listeners' own CPU leaves room for on this machine's cores (print_full_bound). A sweep's exit
status 1 (a finding at error level: refused ports are) is its documented result, not a failure.
The sweep child runs without RDPROBE_CHECK_CONSISTENCY and with RDPROBE_NAME_LOOKUP=local (a
certificate name is not sent to a DNS server off this machine).
rdprobe runs as users get it, from a wheel of this tree installed in a throwaway venv
(scripts/wheel_venv.py: an editable tree where bytecode is not written compiles every module at
each start); ``--editable`` runs this interpreter's instead.
Linux only (wait4, /proc, loopback /8). Usage: python3 scripts/bench_sweep.py [--listeners N]
[--editable]
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
sys.path.insert(0, str(ROOT / "scripts"))

from wheel_venv import installed_python  # noqa: E402

from rdprobe.emulate.server import serve  # noqa: E402

NET = ipaddress.IPv4Network("127.1.0.0/16")
PORT = 3389
CHILD_LIMIT_S = 900
#: The rdprobe command of the sweeps: a wheel's console script (wheel_venv), or this interpreter's.
RDPROBE: list[str] = []
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


#: Exit statuses of `rdprobe sweep` that are results (README "Exit codes"): 0 nothing wrong,
#: 1 a row has a finding at error level (a refused port is one).
SWEEP_RESULTS = {0: "no problem found", 1: "exit 1: a finding at error level (documented)"}


def child_env() -> dict[str, str]:
    """The environment of the tools measured: no consistency self-check (the test suite's
    RDPROBE_CHECK_CONSISTENCY), names resolved locally only (rdprobe.live.names)."""
    env = {k: v for k, v in os.environ.items() if k != "RDPROBE_CHECK_CONSISTENCY"}
    env["RDPROBE_NAME_LOOKUP"] = "local"
    return env


#: When the watched output file of the last child got its first bytes and its last ones
#: (seconds after spawn).
FIRST_OUTPUT: list[float | None] = [None]
LAST_OUTPUT: list[float | None] = [None]


async def run_child(
    argv: list[str],
    stdout=subprocess.DEVNULL,
    results: dict[int, str] | None = None,
    watch: Path | None = None,
) -> tuple[float, int, int, float]:
    """(seconds, exit status, peak RSS in KiB, CPU seconds) of one child, timed from spawn to
    exit; an exit status outside ``results`` (default: only 0) is printed as a failure. With
    ``watch``, FIRST_OUTPUT[0] says when that file got its first row."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=child_env())
    FIRST_OUTPUT[0] = LAST_OUTPUT[0] = None

    peak = [0]
    cpu = [0.0]
    sizes = [0]

    def wait() -> int:
        # the whole tree's RSS, polled (wait4's ru_maxrss would count this process's memory
        # from before the child's exec, and not the sweep's own worker processes)
        deadline = time.monotonic() + CHILD_LIMIT_S
        while time.monotonic() < deadline:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            if watch is not None:
                try:
                    size = watch.stat().st_size
                except OSError:
                    size = 0
                if size and FIRST_OUTPUT[0] is None:
                    FIRST_OUTPUT[0] = time.monotonic() - start
                if size != sizes[-1]:
                    sizes.append(size)
                    LAST_OUTPUT[0] = time.monotonic() - start
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                cpu[0] = usage.ru_utime + usage.ru_stime  # with its reaped workers
                return status
            time.sleep(0.02)
        proc.kill()
        return os.wait4(proc.pid, 0)[1]

    status = await asyncio.to_thread(wait)
    elapsed = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    known = results if results is not None else {0: "ok"}
    err = proc.stderr.read() if proc.stderr is not None else b""
    if proc.returncode not in known:
        print(f"  child failed ({proc.returncode}): {err[-800:]!r}")
    elif proc.returncode != 0:
        print(f"  {known[proc.returncode]}")
    return elapsed, proc.returncode, peak[0], cpu[0]


EMULATOR = """
import asyncio, sys
from rdprobe.emulate.server import serve
async def main():
    servers = [await serve(sys.argv[1], h, int(sys.argv[2])) for h in sys.argv[3:]]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for s in servers:
        await s.close()
asyncio.run(main())
"""


class Listeners:
    """The emulator listeners: in this process (procs 0) or split over processes of their own.
    ``cpu()`` is the CPU seconds they have used so far."""

    def __init__(self, profile: str, hosts: list[str], procs: int) -> None:
        self.profile, self.hosts, self.nprocs = profile, hosts, procs
        self.servers: list = []
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> None:
        if not self.nprocs:
            self.servers = [await serve(self.profile, h, PORT) for h in self.hosts]
            return
        for i in range(self.nprocs):
            share = self.hosts[i :: self.nprocs]
            argv = [sys.executable, "-c", EMULATOR, self.profile, str(PORT), *share]
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=child_env()
            )
            self.procs.append(proc)
        for proc in self.procs:
            line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
            if line.strip() != b"ready":
                raise RuntimeError("an emulator process did not start")

    def cpu(self) -> float:
        if not self.procs:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for proc in self.procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return total

    def connections(self) -> int | None:
        """Connections the listeners have accepted so far (None: served by other processes)."""
        return None if self.procs else sum(s.connections for s in self.servers)

    def where(self) -> str:
        return f"{self.nprocs} emulator processes" if self.procs else "this process"

    async def close(self) -> None:
        for s in self.servers:
            await s.close()
        for proc in self.procs:
            proc.stdin.close()  # type: ignore[union-attr]
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def measured(listeners: Listeners, child) -> tuple[tuple[float, int, int, float], float]:
    """A child's run and the emulator CPU seconds spent while it ran."""
    before = listeners.cpu()
    result = await child
    return result, listeners.cpu() - before


def per_listener(listeners: Listeners, before: int | None, count: int) -> str:
    now = listeners.connections()
    if now is None or before is None or not count:
        return ""
    return f"; {(now - before) / count:.1f} connections per emulated listener"


def cpu_line(what: str, elapsed: float, cpu: float, emulator_cpu: float) -> str:
    return (
        f"  CPU: {what} {cpu:.2f} s, emulator {emulator_cpu:.2f} s "
        f"({emulator_cpu / elapsed * 100:.0f}% of one core over the {elapsed:.2f} s)"
    )


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


def full_row_problems(row: dict) -> list[str]:
    """Why a depth-full row of a TLS-serving listener is not what a real one gives: no
    TLS version, a failed handshake, no NTLM challenge from NLA."""
    stages = row.get("stages") or {}
    tls = stages.get("tls") or {}
    ids = {f.get("id") for f in row.get("findings") or ()}
    problems = []
    if row.get("outcome") != "rdp":
        problems.append(f"outcome {row.get('outcome')}")
    if not tls.get("version"):
        problems.append("no TLS version")
    if "tls.handshake_failed" in ids:
        problems.append("tls.handshake_failed")
    if "HYBRID" in str((stages.get("nla") or {}).get("selected")) and not (
        stages.get("nla") or {}
    ).get("challenge"):
        problems.append("NLA without an NTLM challenge")
    return problems


async def bench_full(
    work: Path, listeners: list[str], emulated: list[str], rng: random.Random, args, em: Listeners
) -> dict:
    """Depth full on the RDP listeners only: rdprobe sweep over all of them against nmap
    rdp-enum-encryption on a sample of them (nmap's rate per host does not depend on how many
    it is given)."""
    listing = work / "listeners.txt"
    listing.write_text("\n".join(listeners) + "\n")
    out = work / "full.jsonl"
    print(f"rdprobe sweep -iL <{len(listeners)} listeners> --depth full ...")
    argv = [*RDPROBE, "sweep", "-iL", str(listing), "--depth", "full"]
    argv += ["--concurrency", str(args.concurrency), "--timeout", "3", "-o", str(out)]
    argv += ["--workers", str(args.full_workers)] if args.full_workers is not None else []
    conns = em.connections()
    (t_rd, _rc, rss_kib, cpu), em_cpu = await measured(em, run_child(argv, results=SWEEP_RESULTS))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    bad = {r["host"]: full_row_problems(r) for r in rows}
    bad = {h: p for h, p in bad.items() if p}
    ok = len(rows) == len(listeners) and not bad
    rate = len(rows) / t_rd
    print(
        f"  {len(rows)} rows in {t_rd:.2f} s: {rate:,.1f} targets/s, peak RSS {rss_kib / 1024:.1f} MB"
    )
    print(cpu_line("rdprobe", t_rd, cpu, em_cpu) + per_listener(em, conns, len(emulated)))
    with_tls = sum(1 for r in rows if ((r.get("stages") or {}).get("tls") or {}).get("version"))
    with_ntlm = sum(1 for r in rows if ((r.get("stages") or {}).get("nla") or {}).get("challenge"))
    print(
        f"  {with_tls} rows with a TLS version, {with_ntlm} with an NTLM challenge; "
        + (f"NOT real-like: {dict(list(bad.items())[:3])}" if bad else "every row real-like")
    )
    result = {"rate": rate, "rows": len(rows), "rss": rss_kib, "ok": ok, "nmap": None}
    result |= {
        "cpu_ms": cpu / max(len(rows), 1) * 1000,
        "em_ms": em_cpu / max(len(emulated), 1) * 1000,
        # the cores the listeners can use: one for those served by this process
        "em_cores": min(len(os.sched_getaffinity(0)), em.nprocs) if em.nprocs else 1,
    }
    if shutil.which("nmap"):
        sample = sorted(rng.sample(emulated, min(args.full_sample, len(emulated))))
        (work / "full-sample.txt").write_text("\n".join(sample) + "\n")
        print(
            f"nmap -sT -Pn -n -p{PORT} --script rdp-enum-encryption on {len(sample)} listeners ..."
        )
        nmap = ["nmap", "-sT", "-Pn", "-n", f"-p{PORT}", "--script", "rdp-enum-encryption"]
        nmap += ["-iL", str(work / "full-sample.txt"), "-oN", str(work / "nmap-full.txt")]
        conns = em.connections()
        (t_nmap, _rc, _, n_cpu), n_em_cpu = await measured(em, run_child(nmap))
        result["nmap"] = len(sample) / t_nmap
        result["nmap_cpu_ms"] = n_cpu / len(sample) * 1000
        print(f"  {len(sample)} in {t_nmap:.2f} s: {result['nmap']:,.1f} targets/s")
        print(cpu_line("nmap", t_nmap, n_cpu, n_em_cpu) + per_listener(em, conns, len(sample)))
    return result


def print_full(full: dict) -> None:
    print(
        f"  rdprobe sweep full : {full['rate']:10,.1f} targets/s   peak RSS {full['rss'] / 1024:.1f} MB"
        f"   ({full['rows']} listeners, {'every one' if full['ok'] else 'NOT every one'} judged"
        " rdp with TLS and NLA answered)"
    )
    if full["nmap"]:
        print(
            f"  nmap (same hosts)  : {full['nmap']:10,.1f} targets/s   rdprobe full/nmap = "
            f"{full['rate'] / full['nmap']:,.1f}x"
        )
    print_full_bound(full)


def print_full_bound(full: dict) -> None:
    """CPU per target of each side, and the rate the listeners alone allow on this machine: on
    loopback they share its cores with the tool, so no tool's rate exceeds the cores the
    listeners can use over the CPU they spend per listener (with the tool's own CPU at zero)."""
    cores, usable = len(os.sched_getaffinity(0)), full["em_cores"]

    def per_second(cpus: int, ms: float) -> float:
        return cpus / (ms / 1000) if ms > 0 else float("inf")

    bound = per_second(usable, full["em_ms"])
    both = per_second(cores, full["em_ms"] + full["cpu_ms"])
    nmap_cpu = f", nmap {full['nmap_cpu_ms']:.1f} ms" if full.get("nmap_cpu_ms") else ""
    print(
        f"  CPU per target     : rdprobe {full['cpu_ms']:.1f} ms{nmap_cpu}; "
        f"the emulated listener {full['em_ms']:.1f} ms"
    )
    print(
        f"  on this machine    : listeners on {usable} of {cores} cores allow at most "
        f"{bound:,.0f} targets/s with the tool's CPU at zero; {both:,.0f} targets/s with "
        "both sides' CPU on all cores"
    )
    if full["nmap"]:
        print(
            f"  20x nmap would be  : {20 * full['nmap']:10,.1f} targets/s "
            f"({cores / (20 * full['nmap']) * 1000:.1f} ms of CPU per target for both sides)"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--profile", default="win2012-tls-nla", help="emulator profile")
    parser.add_argument(
        "--emulator-procs", type=int, default=0, help="processes serving the listeners (0: this)"
    )
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--full-workers", type=int, default=None, help="sweep --workers at full")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--full-sample", type=int, default=40, help="nmap hosts at depth full")
    parser.add_argument("--skip-full", action="store_true", help="no depth-full measurement")
    parser.add_argument("--only-full", action="store_true", help="only the depth-full measurement")
    parser.add_argument(
        "--editable", action="store_true", help="run this interpreter's (editable) rdprobe"
    )
    args = parser.parse_args()
    fd_limit = raise_fd_limit()
    rng = random.Random(3389)
    offsets = sorted(rng.sample(range(1, NET.num_addresses - 1), args.listeners + 1))
    xrdp_addr = str(NET[offsets.pop(len(offsets) // 2)])
    emulated = [str(NET[o]) for o in offsets]
    print(
        f"fd limit {fd_limit}; {len(emulated)} emulator listeners ({args.profile}) in {NET} "
        f"port {PORT}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    installed = None if args.editable else installed_python(ROOT, work)
    RDPROBE[:] = [str(installed.with_name("rdprobe"))] if installed else [sys.executable, "-c", CLI]
    print(f"rdprobe: {RDPROBE[0]} ({'a wheel in a temporary venv' if installed else 'editable'})")
    em = Listeners(args.profile, emulated, args.emulator_procs)
    await em.start()
    print(f"  served by {em.where()}")
    xrdp = await asyncio.to_thread(start_xrdp, xrdp_addr, work)
    listeners = set(emulated) | ({xrdp_addr} if xrdp else set())
    try:
        if args.only_full:
            full = await bench_full(work, sorted(listeners), emulated, rng, args, em)
            print("\nresults")
            print_full(full)
            return 0 if full["ok"] else 1
        out = work / "sweep.jsonl"
        print(f"rdprobe sweep {NET} --depth x224 --concurrency {args.concurrency} ...")
        argv = [*RDPROBE, "sweep", str(NET), "--depth", "x224"]
        argv += ["--concurrency", str(args.concurrency), "--timeout", "3", "-o", str(out)]
        (t_rd, _rc, rss_kib, rd_cpu), rd_em = await measured(
            em, run_child(argv, results=SWEEP_RESULTS, watch=out)
        )
        first_row = FIRST_OUTPUT[0]
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
        print(cpu_line("rdprobe", t_rd, rd_cpu, rd_em))
        last_row = LAST_OUTPUT[0]
        if first_row is not None and t_rd > first_row:
            print(
                f"  first row {first_row:.2f} s after start (start-up), then "
                f"{rows / (t_rd - first_row):,.0f} rows/s"
            )
        if last_row is not None:
            print(f"  last row written {t_rd - last_row:.2f} s before the exit (shutdown)")

        print("floor: bare asyncio connect + X.224 request + read ...")
        from rdprobe.protocol import x224

        cr = x224.build_request(cookie="rdprobe", requested=11).hex()
        floor_out = work / "floor.txt"
        with floor_out.open("w") as fh:
            floor_argv = [sys.executable, "-c", FLOOR, cr, str(int(NET[0]))]
            floor_argv += [str(NET.num_addresses), str(args.concurrency), str(PORT)]
            (t_floor, _, _, fl_cpu), fl_em = await measured(em, run_child(floor_argv, stdout=fh))
        floor_rate = NET.num_addresses / t_floor
        print(
            f"  {NET.num_addresses} in {t_floor:.2f} s: {floor_rate:,.0f} targets/s "
            f"(answered: {floor_out.read_text().strip()})"
        )
        print(cpu_line("floor", t_floor, fl_cpu, fl_em))

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
            nmap = ["nmap", "-sT", "-Pn", "-n", f"-p{PORT}", "--script", "rdp-enum-encryption"]
            nmap += ["-iL", str(listing), "-oN", str(work / "nmap.txt")]
            t_nmap, _rc, _, _ = await run_child(nmap)
            nmap_rate = len(sample) / t_nmap
            print(f"  {len(sample)} in {t_nmap:.2f} s: {nmap_rate:,.1f} targets/s")
        else:
            print("  note: nmap not installed: no nmap comparison")
        full = None
        if not args.skip_full:
            full = await bench_full(work, sorted(listeners), emulated, rng, args, em)
    finally:
        await em.close()
        if xrdp is not None:
            xrdp.terminate()
            xrdp.wait(5)
        shutil.rmtree(work, ignore_errors=True)  # the wheel's venv too, whatever path returned

    print("\nresults")
    print(f"  rdprobe sweep x224 : {rd_rate:10,.0f} targets/s   peak RSS {rss_kib / 1024:.1f} MB")
    ratio = rd_rate / floor_rate
    pace = f"floor {1 / ratio:.2f}x faster" if ratio < 1 else f"rdprobe {ratio:.2f}x faster"
    print(
        f"  floor (bare loop)  : {floor_rate:10,.0f} targets/s   rdprobe/floor = {ratio:.2f} "
        f"({pace}; goal 0.8-1.3)"
    )
    if nmap_rate:
        print(
            f"  nmap rdp-enum-enc. : {nmap_rate:10,.1f} targets/s   rdprobe/nmap = {rd_rate / nmap_rate:,.0f}x"
        )
    if full is not None:
        print_full(full)
    exact = found == listeners
    print(
        f"  listeners {len(listeners)} (xrdp {'yes' if xrdp else 'no'}), rdprobe found {len(found)}: "
        + (
            "exactly the listeners"
            if exact
            else f"MISMATCH missing {sorted(listeners - found)[:5]} extra {sorted(found - listeners)[:5]}"
        )
    )
    ok = exact and rows == NET.num_addresses and (full is None or full["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
