#!/usr/bin/env python3
"""The fuzz suite's harness run for longer (a script, not a test): parsers, captures, live.

Runs the same targets, mutations and checks as tests/test_fuzz_*.py, bounded by count and by
time, and prints the inputs and the defects by kind:

* parsers: every parser of rdprobe.protocol (and the live adapters' sans-IO parts) on mutated
  real bytes; a defect is any exception other than ProtocolError;
* captures: `rdprobe pcap` on mutated pcap / pcapng / gzip files; a defect is an exit code
  other than 0/1/2, a traceback, or an error line longer than 400 characters;
* live: hostile listeners on 127.77.x.y loopback addresses (rig.ports) replaying real server
  bytes with mutations at every stage, each probed by `check`; a defect is a count of reports
  other than one, an "internal error" in a stage, or a wall time over 1.15 x the deadline.

Reproducers (hex for parsers, files for captures, behaviour+seed for live) go to --out.
Traffic goes only to loopback.

    python3 scripts/fuzz.py [--inputs 100000] [--captures 3000] [--live-rounds 20]
                            [--max-seconds 1500] [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzzkit import captures, targets  # noqa: E402
from fuzzkit.listeners import BEHAVIOURS, HostileServers, Listener  # noqa: E402

LIVE_TIMEOUT_S = 1.0
LIVE_RATIO_LIMIT = 1.15


def fuzz_parsers(count: int, rng: random.Random, until: float, out: Path, defects: Counter) -> int:
    chosen = [t for t in targets.targets() if t.corpus()]
    done = 0
    per_target = max(1, count // len(chosen))
    for target in chosen:
        for data in targets.cases(target, rng, per_target):
            done += 1
            kind = targets.run_case(target, data)
            if kind:
                defects[kind] += 1
                with (out / "parsers.txt").open("a") as f:
                    f.write(f"{kind}\t{data.hex()}\n")
            if done % 1000 == 0 and time.monotonic() > until:
                return done
    return done


def fuzz_captures(count: int, rng: random.Random, until: float, out: Path, defects: Counter) -> int:
    work = Path(tempfile.mkdtemp(prefix="rdprobe-fuzz-pcap-"))
    base = captures.seed_files(work)
    done = 0
    while done < count and time.monotonic() < until:
        batch = []
        for i in range(min(200, count - done)):
            name, data = captures.mutate_capture(rng, *rng.choice(base))
            path = work / f"{done + i:06d}-{name}"
            path.write_bytes(data)
            batch.append(path)
        done += len(batch)
        for path, run in captures.run_pcap_many(batch):
            kind = run.defect()
            if kind:
                defects[kind] += 1
                (out / path.name).write_bytes(path.read_bytes())
        for path in batch:
            path.unlink(missing_ok=True)
    return done


def fuzz_live(rounds: int, until: float, out: Path, defects: Counter) -> tuple[int, dict]:
    from rdprobe.live.check import CheckOptions, check_target
    from rdprobe.live.target import parse_target
    from rdprobe.render.jsonl import dumps, report_dict
    from rig.ports import loopback_address

    deadline = 4 * LIVE_TIMEOUT_S
    worst: dict[str, float] = {}
    probes = 0
    addresses = [loopback_address() for _ in BEHAVIOURS]
    opts = CheckOptions.with_timeout(LIVE_TIMEOUT_S)
    for round_no in range(rounds):
        if time.monotonic() > until:
            break
        listeners = [
            Listener(b, a, seed=1000 * round_no + i)
            for i, (b, a) in enumerate(zip(BEHAVIOURS, addresses, strict=True))
        ]

        async def probe_all(listeners=listeners):
            async def one(item):
                start = time.monotonic()
                try:
                    reports = await check_target(parse_target(item.target), opts)
                except AssertionError as exc:  # a consistency rule of the report (see below)
                    reports = exc
                return item, time.monotonic() - start, reports

            return await asyncio.gather(*(one(item) for item in listeners))

        with HostileServers(listeners) as servers:
            results = asyncio.run(probe_all())
            servers.wait_idle(5)
        for item, wall, reports in results:
            probes += 1
            ratio = wall / deadline
            worst[item.behaviour] = max(worst.get(item.behaviour, 0.0), ratio)
            kinds = []
            if isinstance(reports, AssertionError):
                kinds.append("live: inconsistent report (classify's consistency rules)")
            elif len(reports) != 1:
                kinds.append("live: reports != 1")
            elif "internal error" in dumps(report_dict(reports[0])):
                kinds.append("live: internal error")
            if ratio > LIVE_RATIO_LIMIT:
                kinds.append("live: deadline overrun")
            for kind in kinds:
                defects[kind] += 1
                with (out / "live.txt").open("a") as f:
                    f.write(f"{kind}\t{item.behaviour}\tseed={item.seed}\tratio={ratio:.3f}\n")
    return probes, worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000, help="parser inputs")
    parser.add_argument("--captures", type=int, default=3000, help="mutated capture files")
    parser.add_argument("--live-rounds", type=int, default=20, help="rounds of hostile listeners")
    parser.add_argument("--max-seconds", type=float, default=1500, help="time bound, all phases")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="reproducers (default: a tmp dir)")
    args = parser.parse_args()
    # a report that contradicts itself is a defect too (classify raises; pcap then exits 3)
    os.environ["RDPROBE_CHECK_CONSISTENCY"] = "1"
    out = args.out or Path(tempfile.mkdtemp(prefix="rdprobe-fuzz-out-"))
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    start = time.monotonic()
    # the time bound is shared: parsers first, then captures, then the live listeners
    until = start + args.max_seconds
    defects: Counter[str] = Counter()
    counts = {}
    t0 = time.monotonic()
    counts["parser inputs"] = fuzz_parsers(args.inputs, rng, start + 0.4 * args.max_seconds,
                                           out, defects)  # fmt: skip
    t1 = time.monotonic()
    counts["capture files"] = fuzz_captures(args.captures, rng, start + 0.8 * args.max_seconds,
                                            out, defects)  # fmt: skip
    t2 = time.monotonic()
    counts["live probes"], worst = fuzz_live(args.live_rounds, until, out, defects)
    t3 = time.monotonic()
    print(f"inputs: {sum(counts.values())} in {t3 - t0:.0f} s")
    for (name, n), secs in zip(counts.items(), (t1 - t0, t2 - t1, t3 - t2), strict=True):
        print(f"  {name}: {n} ({secs:.0f} s)")
    print(f"defects: {sum(defects.values())}")
    for kind, n in sorted(defects.items()):
        print(f"  {kind}: {n}")
    print(f"live worst wall time / deadline ({4 * LIVE_TIMEOUT_S:g} s), by behaviour:")
    for behaviour, ratio in sorted(worst.items()):
        print(f"  {behaviour}: {ratio:.3f}")
    print(f"reproducers: {out}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
