#!/usr/bin/env python3
"""Benchmark `rdprobe pcap --json` against tshark on large synthetic captures (a script, not a test).

For each shape and size (default 1M and 4M packets) it writes a capture with scripts/make_big_pcap.py
(``complete``: whole TCP/UDP exchanges; ``busy``: a busy link where nearly every packet is a flow seen
mid-stream, one or two packets each; both with a few hundred RDP handshakes placed in them, the busy
shape's partly on non-standard ports), then times, in the same run:

* ``rdprobe pcap --json FILE``
* ``tshark -r FILE -Y cotp -T fields -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e cotp.type
  -e rdp.negReq.requestedProtocols -e rdp.negReq.selectedProtocol -e rdp.negFailure.failureCode``
  (tshark has no ``x224`` display filter; ``cotp`` is its name for X.224)

checks both found the same RDP connections (client/server endpoints, requested and selected
protocols), and prints packets/s, the ratios of wall time and of CPU time (user + system; the
steadier figure on a shared machine), each child's peak RSS (``ru_maxrss`` of a wrapper
process that runs only that child) and the highest 1-minute load average seen around the pair (what
else ran). File only; nothing is sent on any network.

    python3 scripts/bench_pcap.py [--sizes 1000000,4000000] [--shapes complete,busy] [--rdp 300]
        [--dir /tmp] [--keep] [--root /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

from make_big_pcap import write_big_pcap, write_busy_pcap  # noqa: E402

RDPROBE = "from rdprobe import cli\ncli.main()\n"
# Runs one command and reports its own children's peak RSS: RUSAGE_CHILDREN of a fresh process
# covers exactly that one child.
WRAPPER = (
    "import json, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "with open(sys.argv[1], 'wb') as out:\n"
    "    rc = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode\n"
    "wall = time.perf_counter() - t\n"
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "cpu = use.ru_utime + use.ru_stime\n"
    "print(json.dumps({'rc': rc, 'wall': wall, 'cpu': cpu, 'rss_kb': use.ru_maxrss}))\n"
)
TSHARK_FIELDS = (
    "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "cotp.type",
    "rdp.negReq.requestedProtocols", "rdp.negReq.selectedProtocol", "rdp.negFailure.failureCode",
)  # fmt: skip


def measure(out: Path, argv: list[str], root: Path = ROOT) -> dict:
    # cwd=root too: ``python -c`` puts the working directory first on sys.path, so run from
    # another checkout the child would import that checkout's rdprobe, not root's
    p = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
    )
    return json.loads(p.stdout)


def rdprobe_answer(path: Path) -> dict[tuple, tuple]:
    """(client, cport, server, sport) -> (requested, selected) from rdprobe's JSON lines."""
    found = {}
    for line in path.read_text().splitlines():
        c = json.loads(line)["connection"]
        if c["transport"] == "tcp":
            key = (c["client"], c["client_port"], c["server"], c["server_port"])
            found[key] = (c["requested"], c["selected"])
    return found


def tshark_answer(path: Path) -> dict[tuple, tuple]:
    """The same from tshark's CR (0x0e) and CC (0x0d) rows."""
    requests: dict[tuple, int | None] = {}
    selected: dict[tuple, int | None] = {}
    for line in path.read_text().splitlines():
        f = line.split("\t")
        if len(f) < len(TSHARK_FIELDS):
            continue
        src, sport, dst, dport, kind, req, sel, _fail = f[: len(TSHARK_FIELDS)]
        if kind == "0x0e":
            requests[(src, int(sport), dst, int(dport))] = int(req, 16) if req else None
        elif kind == "0x0d":
            selected[(dst, int(dport), src, int(sport))] = int(sel, 16) if sel else None
    return {k: (v, selected.get(k)) for k, v in requests.items()}


def bench(n: int, rdp: int, directory: Path, keep: bool, shape: str = "complete",
          root: Path = ROOT) -> dict:  # fmt: skip
    cap = directory / f"bench-{shape}-{n}.pcap"
    t = time.perf_counter()
    summary = (write_busy_pcap if shape == "busy" else write_big_pcap)(cap, n, rdp)
    written = time.perf_counter() - t
    packets = summary["packets"]
    ours_out = directory / f"bench-{shape}-{n}.jsonl"
    theirs_out = directory / f"bench-{shape}-{n}.tshark"
    load = os.getloadavg()[0]  # the machine is shared: what else ran shows here
    ours = measure(ours_out, [sys.executable, "-c", RDPROBE, "pcap", "--json", str(cap)], root)
    tshark_cmd = ["tshark", "-r", str(cap), "-Y", "cotp", "-T", "fields"]
    for port in sorted({c["server_port"] for c in summary["rdp_connections"]} - {3389, 102}):
        tshark_cmd += ["-d", f"tcp.port=={port},tpkt"]  # tshark decodes TPKT on 102/3389 only
    for field in TSHARK_FIELDS:
        tshark_cmd += ["-e", field]
    load = max(load, os.getloadavg()[0])
    theirs = measure(theirs_out, tshark_cmd)
    load = max(load, os.getloadavg()[0])
    a, b = rdprobe_answer(ours_out), tshark_answer(theirs_out)
    placed = {
        (c["client"], c["client_port"], c["server"], c["server_port"])
        for c in summary["rdp_connections"]
    }
    result = {
        "shape": shape,
        "rdprobe_root": str(root),
        "packets": packets,
        "file_mb": round(cap.stat().st_size / 1e6, 1),
        "write_s": round(written, 1),
        "rdp_placed": len(placed),
        "rdprobe_found": len(a),
        "tshark_found": len(b),
        "same_connections": set(a) == set(b) == placed,
        "same_answers": a == b,
        "rdprobe_s": round(ours["wall"], 2),
        "tshark_s": round(theirs["wall"], 2),
        "rdprobe_pps": round(packets / ours["wall"]),
        "tshark_pps": round(packets / theirs["wall"]),
        "speedup_vs_tshark": round(theirs["wall"] / ours["wall"], 2),
        "rdprobe_cpu_s": round(ours["cpu"], 2),
        "tshark_cpu_s": round(theirs["cpu"], 2),
        "cpu_speedup_vs_tshark": round(theirs["cpu"] / ours["cpu"], 2),
        "rdprobe_peak_rss_mb": round(ours["rss_kb"] / 1024, 1),
        "tshark_peak_rss_mb": round(theirs["rss_kb"] / 1024, 1),
        "load_1min": round(load, 2),  # highest seen around the two runs (ours adds about 1)
    }
    if not keep:
        for f in (cap, ours_out, theirs_out):
            f.unlink(missing_ok=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,4000000")
    ap.add_argument("--rdp", type=int, default=300, help="RDP handshakes placed in each capture")
    ap.add_argument("--dir", default=None, help="where to write the captures (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the captures and outputs")
    ap.add_argument(
        "--shapes",
        default="complete,busy",
        help="complete (whole connections) and/or busy (flows seen mid-stream)",
    )
    ap.add_argument(
        "--root",
        default=str(ROOT),
        help="rdprobe checkout to measure (e.g. main, for a before/after figure)",
    )
    args = ap.parse_args()
    if shutil.which("tshark") is None:
        print("tshark is not installed", file=sys.stderr)
        return 2
    directory = Path(args.dir or tempfile.mkdtemp(prefix="rdprobe-bench-")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    for shape in args.shapes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            r = bench(size, args.rdp, directory, args.keep, shape, Path(args.root).resolve())
            results.append(r)
            print(json.dumps(r), flush=True)
    print()
    print(f"{'shape':>8} {'packets':>10} {'rdprobe p/s':>12} {'tshark p/s':>11} {'ratio':>6} {'cpu ratio':>9} "
          f"{'rdprobe RSS':>12} {'tshark RSS':>11} {'same':>5} {'load':>5}")  # fmt: skip
    for r in results:
        print(
            f"{r['shape']:>8} {r['packets']:>10} {r['rdprobe_pps']:>12} {r['tshark_pps']:>11} "
            f"{r['speedup_vs_tshark']:>5}x {r['cpu_speedup_vs_tshark']:>8}x {r['rdprobe_peak_rss_mb']:>9} MB "
            f"{r['tshark_peak_rss_mb']:>8} MB {r['same_connections'] and r['same_answers']!s:>5} "
            f"{r['load_1min']:>5}"
        )
    print(f"load: highest 1-minute load average around each pair of runs ({os.cpu_count()} CPUs)")
    ok = all(r["same_connections"] and r["same_answers"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
