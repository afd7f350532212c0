#!/usr/bin/env python3
"""Benchmark `sweep --shard K/N` target selection on 0.0.0.0/0 (a script, not a test).

Issue 12's row: ``sweep 0.0.0.0/0 --shard 1/1000000`` must start probing at once and cost O(1)
per target (it used to hash the whole range first: 2 targets in 11 s). This times what the
sweep does before and while probing — the same calls as ``rdprobe sweep`` (load_specs,
parse_ports, TargetSet, rdprobe.sweep.shard.select), with the library and no traffic: no
address of 0.0.0.0/0 is ever connected to (only loopback and the rig's own namespaces are).

For shares of 1/1,000,000, 1/100,000 and 1/10,000 of 0.0.0.0/0 on port 3389, without and with
an exclude list of the reserved ranges an Internet sweep leaves out, it prints the time to the
first target, the time for the whole share and the cost per target; then the ratio of the cost
per target of the smallest share to the largest's (about 1.0: O(1) per target, whatever the
share) and a check that shard 1..N of a small range are disjoint and cover it.

    python3 scripts/bench_shard.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rdprobe.live.target import parse_ports  # noqa: E402
from rdprobe.sweep.shard import select  # noqa: E402
from rdprobe.sweep.targets import TargetSet, load_specs  # noqa: E402

SHARES = (1_000_000, 100_000, 10_000)
#: RFC 6890's special-purpose ranges (and multicast, reserved): what an Internet sweep excludes.
RESERVED = (
    "0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24"
    " 192.0.2.0/24 192.88.99.0/24 192.168.0.0/16 198.18.0.0/15 198.51.100.0/24 203.0.113.0/24"
    " 224.0.0.0/4 240.0.0.0/4"
).split()


def target_set(excludes: list[str]) -> TargetSet:
    """What `rdprobe sweep 0.0.0.0/0 [--exclude ...]` builds from its command line."""
    stdin = io.StringIO()
    return TargetSet(
        load_specs(["0.0.0.0/0"], [], stdin), parse_ports("3389"), load_specs(excludes, [], stdin)
    )


def one_share(n: int, excludes: list[str]) -> tuple[float, float, int]:
    """(seconds to the first target, seconds for all of shard 1/n, targets in it)"""
    start = time.perf_counter()
    share = select(target_set(excludes), 1, n)
    next(share)
    first = time.perf_counter() - start
    count = 1 + sum(1 for _ in share)
    return first, time.perf_counter() - start, count


def disjoint_and_covering(n: int = 7) -> bool:
    """Shards 1..n of a /20 on two ports, with an exclude: every target in exactly one."""
    ts = TargetSet(
        load_specs(["10.9.0.0/20"], [], io.StringIO()),
        parse_ports("3389,3390"),
        load_specs(["10.9.3.0/24"], [], io.StringIO()),
    )
    whole = [(t.host, t.port) for t in ts]
    parts = [(t.host, t.port) for k in range(1, n + 1) for t in select(ts, k, n)]
    return len(parts) == len(set(parts)) and set(parts) == set(whole)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each share (median)")
    args = parser.parse_args()
    per_target: dict[tuple[int, bool], float] = {}
    print(f"0.0.0.0/0 port 3389, shard 1/N; medians of {args.repeat} runs")
    print(
        f"{'N':>10} {'excludes':>9} {'targets':>9} {'first target':>13} {'whole share':>12} "
        f"{'per target':>11}"
    )
    for excluded in (False, True):
        excludes = RESERVED if excluded else []
        for n in SHARES:
            runs = [one_share(n, excludes) for _ in range(args.repeat)]
            first = statistics.median(r[0] for r in runs)
            whole = statistics.median(r[1] for r in runs)
            count = runs[0][2]
            per_target[(n, excluded)] = whole / count
            print(
                f"{n:>10,} {len(excludes):>9} {count:>9,} {first * 1000:>10.3f} ms "
                f"{whole * 1000:>9.1f} ms {whole / count * 1e6:>8.2f} us"
            )
    print("\nresults")
    for excluded in (False, True):
        small, large = per_target[(SHARES[0], excluded)], per_target[(SHARES[-1], excluded)]
        print(
            f"  cost per target, 1/{SHARES[0]:,} against 1/{SHARES[-1]:,}"
            f"{' (reserved ranges excluded)' if excluded else ''}: {small / large:.2f}"
            " (1.0: O(1) per target)"
        )
    ok = disjoint_and_covering()
    print(f"  shards 1..7 of a /20 on two ports: {'disjoint and covering' if ok else 'NOT exact'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
