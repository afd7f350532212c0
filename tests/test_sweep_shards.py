"""Shards: every target:port in exactly one share, at O(1) per target; `--shard auto` from the
environment of Kubernetes, Slurm, AWS Batch and GNU parallel.

Target generation only: nothing here opens a connection (0.0.0.0/0 is indexed, never probed).
"""

from __future__ import annotations

import ipaddress
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdprobe.live.target import TargetError
from rdprobe.sweep.arrayjob import from_env
from rdprobe.sweep.shard import parse_shard, resolve_shard, select
from rdprobe.sweep.targets import OctetPattern, TargetSet, load_specs, parse_spec

# small spaces of every kind, overlapping each other on purpose
_ITEMS = [
    "10.0.0.0/29",
    "10.0.0.4-10.0.0.11",
    "10.0.0-1.3-5",
    "10.0.1.4",
    "10.0.0.6:3390",
    "2001:db8::/126",
    "2001:db8::2-2001:db8::5",
    "host-a",
    "host-b:3390",
    "HOST-A",
]
_EXCLUDES = ["10.0.0.2", "10.0.0.8/30", "10.0.1.3-4", "10.0.0.5:3389", "2001:db8::3", "host-b"]


def _set(items, ports, excludes=()):
    return TargetSet(load_specs(items, [], []), ports, load_specs(list(excludes), [], []))


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.sampled_from(_ITEMS), min_size=1, max_size=6),
    excludes=st.lists(st.sampled_from(_EXCLUDES), max_size=3),
    ports=st.sampled_from([(3389,), (3389, 3390), (3390, 1, 3389)]),
    n=st.integers(1, 9),
)
def test_every_target_in_exactly_one_shard(items, excludes, ports, n):
    targets = _set(items, ports, excludes)
    whole = [str(t) for t in targets]
    shares = [[str(t) for t in select(targets, k, n)] for k in range(1, n + 1)]
    joined = [t for share in shares for t in share]
    assert sorted(joined) == sorted(whole)  # together: the whole set, nothing twice
    assert len(joined) == len(set(joined))
    position = {t: i for i, t in enumerate(whole)}
    for share in shares:  # each share in the sweep's own order
        assert [position[t] for t in share] == sorted(position[t] for t in share)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(st.sampled_from(_ITEMS), min_size=1, max_size=5),
    n=st.integers(1, 5),
    workers=st.integers(1, 4),
)
def test_workers_split_their_shard_exactly(items, n, workers):
    targets = _set(items, (3389, 3390), ["10.0.0.2"])
    for k in range(1, n + 1):
        shard = [str(t) for t in select(targets, k, n)]
        parts = [str(t) for w in range(workers) for t in select(targets, k, n, w, workers)]
        assert sorted(parts) == sorted(shard) and len(parts) == len(set(parts))


def test_a_millionth_of_everything_starts_at_once():
    """0.0.0.0/0 in a million shards: every millionth address, computed not searched for."""
    everything = _set(["0.0.0.0/0"], (3389,))
    first = list(itertools.islice(select(everything, 1, 1_000_000), 3))
    assert [str(t) for t in first] == ["0.0.0.0:3389", "0.15.66.64:3389", "0.30.132.128:3389"]
    last = next(iter(select(everything, 1_000_000, 1_000_000)))
    assert str(last) == "0.15.66.63:3389"  # index 999,999

    # O(1) per target: a share's targets cost about what the unsharded stream's do
    def per_item(it, count=2000):
        start = time.perf_counter()
        for _ in itertools.islice(it, count):
            pass
        return (time.perf_counter() - start) / count

    sharded = min(per_item(select(everything, 7, 1_000_000)) for _ in range(3))
    plain = min(per_item(iter(everything)) for _ in range(3))
    assert sharded / plain < 10, (sharded, plain)


def test_a_shard_jumps_over_excluded_addresses():
    targets = _set(["10.0.0.0/8"], (3389,), ["10.0.0.0/9"])
    first = next(iter(select(targets, 3, 7)))
    index = 2**23 + (2 - 2**23) % 7  # the first index >= 10.128.0.0 equal to 2 modulo 7
    assert first.host == f"10.{128 + (index - 2**23) // 65536}.{(index >> 8) & 255}.{index & 255}"


def test_an_ipv6_slash_64_in_shards_of_any_size():
    targets = _set(["2001:db8::/64"], (3389, 3390))
    got = list(itertools.islice(select(targets, 2, 10**12), 2))
    second = ipaddress.IPv6Address(int(ipaddress.IPv6Address("2001:db8::")) + (1 + 10**12) // 2)
    assert [str(t) for t in got] == ["[2001:db8::]:3390", f"[{second}]:3390"]


@settings(max_examples=200, deadline=None)
@given(
    octets=st.lists(
        st.lists(st.integers(0, 255), min_size=1, max_size=4, unique=True).map(sorted),
        min_size=4,
        max_size=4,
    ),
    probe=st.integers(0, 2**32 - 1),
)
def test_octet_pattern_index_arithmetic(octets, probe):
    pattern = OctetPattern(tuple(tuple(o) for o in octets))
    values = [a << 24 | b << 16 | c << 8 | d for a, b, c, d in itertools.product(*octets)]
    assert [pattern.at(i) for i in range(pattern.size)] == values
    above = [i for i, v in enumerate(values) if v > probe]
    assert pattern.index_after(probe) == (above[0] if above else pattern.size)
    for i, v in enumerate(values):
        assert pattern.index_after(v) == i + 1


def test_big_octet_pattern_excluded_from_shards():
    """An exclude kept as a pattern (too many runs for intervals) still holds in every share."""
    targets = _set(["10.2.0.0/22"], (3389,), ["10.2.0-3.0-200"])
    whole = [str(t) for t in targets]
    shares = [[str(t) for t in select(targets, k, 3)] for k in (1, 2, 3)]
    assert sorted(t for s in shares for t in s) == sorted(whole) and len(whole) == 4 * 55
    assert shares[1][0] == "10.2.0.202:3389"  # index 202: above 200 and 1 modulo 3


@pytest.mark.parametrize(
    ("env", "shards", "want"),
    [
        ({"JOB_COMPLETION_INDEX": "0"}, 4, (1, 4)),
        ({"JOB_COMPLETION_INDEX": "3"}, 4, (4, 4)),
        (
            {
                "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "8",
                "SLURM_ARRAY_TASK_COUNT": "8",
                "SLURM_ARRAY_TASK_STEP": "1",
            },
            None,
            (1, 8),
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "12",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "28",
                "SLURM_ARRAY_TASK_COUNT": "8",
                "SLURM_ARRAY_TASK_STEP": "4",
            },
            None,
            (4, 8),
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "9",
                "SLURM_ARRAY_TASK_MIN": "5",
                "SLURM_ARRAY_TASK_MAX": "9",
                "SLURM_ARRAY_TASK_COUNT": "5",
            },
            5,
            (5, 5),
        ),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "2", "AWS_BATCH_JOB_ARRAY_SIZE": "10"}, None, (3, 10)),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "9"}, 10, (10, 10)),
        ({"PARALLEL_SEQ": "2", "PARALLEL_JOBSLOT": "1"}, 3, (2, 3)),
    ],
)
def test_shard_auto_from_each_runner(env, shards, want):
    assert from_env(env, shards) == want
    assert resolve_shard("auto", shards, env) == want


@pytest.mark.parametrize(
    ("env", "shards", "words"),
    [
        ({}, 4, "no array-job index"),
        ({"PARALLEL_JOBSLOT": "1"}, 4, "no array-job index"),  # a slot is not a shard
        ({"JOB_COMPLETION_INDEX": "0"}, None, "--shards N"),
        ({"JOB_COMPLETION_INDEX": "4"}, 4, "task 5 of 4"),
        ({"JOB_COMPLETION_INDEX": "x"}, 4, "not a task number"),
        (
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_MAX": "7",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            None,
            "evenly",
        ),  # --array=1,3,7
        (
            {
                "SLURM_ARRAY_TASK_ID": "2",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_STEP": "2",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            None,
            "steps",
        ),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "4"}, 5, "says 4"),
        (
            {"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2", "PARALLEL_SEQ": "1"},
            2,
            "both",
        ),
    ],
)
def test_shard_auto_refuses_with_one_line(env, shards, words):
    with pytest.raises(TargetError) as info:
        resolve_shard("auto", shards, env)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_shard_text_and_shards_option_agree():
    assert parse_shard("3/1000000000") == (3, 10**9)  # any size
    assert resolve_shard("2/4", 4, {}) == (2, 4)
    with pytest.raises(TargetError, match="--shards says 5"):
        resolve_shard("2/4", 5, {})


def test_spec_size_of_everything():
    assert parse_spec("0.0.0.0/0").size == 2**32


def test_sweep_shard_auto_from_the_environment(tmp_path):
    """`rdprobe sweep --shard auto` in a Kubernetes Indexed Job pod: index 1 of 2 is shard 2,
    the 2nd and 4th target (loopback rig addresses, nothing listens); a bad index is one line."""
    import json
    import os
    import subprocess
    import sys

    from rig.ports import loopback_address

    hosts = [loopback_address() for _ in range(4)]
    listing = tmp_path / "targets.txt"
    listing.write_text("\n".join(hosts) + "\n")
    argv = [sys.executable, "-m", "rdprobe", "sweep", "-iL", str(listing), "--depth", "tcp"]
    argv += ["--timeout", "2", "--json", "--shard", "auto", "--shards", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PARALLEL_", "SLURM_"))}
    run = subprocess.run(
        argv, env={**env, "JOB_COMPLETION_INDEX": "1"}, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stderr  # rows with a problem (nothing listens): exit 1
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(r["host"] for r in rows) == sorted([hosts[1], hosts[3]])
    bad = subprocess.run(
        argv, env={**env, "JOB_COMPLETION_INDEX": "2"}, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == (
        "rdprobe: error: --shard auto: Kubernetes JOB_COMPLETION_INDEX is task 3 of 2 (from 1):"
        " check --shards"
    )
