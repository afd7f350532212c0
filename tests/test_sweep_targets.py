"""Sweep targets: every form, excludes, de-duplication, lazy expansion, and shard partition.

Parsing only: nothing here opens a connection (10.0.0.0/8 is expanded, never probed).
"""

from __future__ import annotations

import io
import itertools
import time
import tracemalloc

import pytest

from rdprobe.live.target import Target, TargetError
from rdprobe.sweep.shard import parse_shard, select
from rdprobe.sweep.targets import (
    Block,
    IntervalSet,
    Name,
    OctetPattern,
    TargetSet,
    load_specs,
    parse_spec,
)


def expand(items, ports=(3389,), excludes=()):
    return [
        str(t) for t in TargetSet(load_specs(items, [], []), ports, load_specs(excludes, [], []))
    ]


@pytest.mark.parametrize(
    ("text", "size", "first", "last"),
    [
        ("10.0.0.0/30", 4, "10.0.0.0:3389", "10.0.0.3:3389"),
        ("10.0.0.5/30", 4, "10.0.0.4:3389", "10.0.0.7:3389"),  # host bits are ignored
        ("10.0.0.1-10.0.0.50", 50, "10.0.0.1:3389", "10.0.0.50:3389"),
        ("10.0.0.1-50", 50, "10.0.0.1:3389", "10.0.0.50:3389"),
        ("10.0.0-3.1-254", 4 * 254, "10.0.0.1:3389", "10.0.3.254:3389"),
        ("10.0.1,3.*", 512, "10.0.1.0:3389", "10.0.3.255:3389"),
        ("2001:db8::/126", 4, "[2001:db8::]:3389", "[2001:db8::3]:3389"),
        ("2001:db8::fe-2001:db8::101", 4, "[2001:db8::fe]:3389", "[2001:db8::101]:3389"),
        ("127.0.0.1", 1, "127.0.0.1:3389", "127.0.0.1:3389"),
        ("127.0.0.1:3390", 1, "127.0.0.1:3390", "127.0.0.1:3390"),
        ("[::1]:3390", 1, "[::1]:3390", "[::1]:3390"),
        ("::1", 1, "[::1]:3389", "[::1]:3389"),
        ("Server-1.Example.COM", 1, "server-1.example.com:3389", "server-1.example.com:3389"),
        ("rdp-host:3390", 1, "rdp-host:3390", "rdp-host:3390"),
    ],
)
def test_every_form(text, size, first, last):
    spec = parse_spec(text)
    got = expand([text])
    assert spec.size == size == len(got)
    assert got[0] == first and got[-1] == last
    assert len(set(got)) == len(got)


def test_spec_kinds():
    assert parse_spec("10.0.0.0/8").item == Block(4, 0x0A000000, 0x0AFFFFFF)
    assert isinstance(parse_spec("10.0.0-3.1-254").item, OctetPattern)
    assert parse_spec("host").item == Name("host")
    assert parse_spec("[fe80::1%lo]:3389").item == Name("fe80::1%lo", True)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("10.0.0.0/33", "CIDR"),
        ("10.0.0.300", "IPv4"),
        ("10.0.0.50-10.0.0.1", "backwards"),
        ("10.0.0.1-10.0.0.x", "range"),
        ("10.0.0.1-::1", "mix"),
        ("2001:db8::1-5", "IPv6 range"),
        ("10.0.0-300.1", "above 255"),
        ("10.0.5-3.1", "backwards"),
        ("10.0.a-3.1", "not a valid"),
        ("2001:db8::/129", "CIDR"),
        ("host:99999", "outside"),
        ("bad_host!", "not a valid host"),
        ("", "empty"),
    ],
)
def test_bad_input_one_clear_error(text, words):
    with pytest.raises(TargetError) as info:
        parse_spec(text)
    message = str(info.value)
    assert "\n" not in message and words.lower() in message.lower()


def test_files_stdin_comments_and_error_position(tmp_path):
    listing = tmp_path / "targets.txt"
    listing.write_text("# servers\n127.0.0.1  127.0.0.2 # two\n\n10.9.0.0/31\n")
    stdin = io.StringIO("host-a\n# nothing\nhost-b:3390\n")
    specs = load_specs(["-", "127.0.0.3"], [str(listing)], stdin)
    ts = [str(t) for t in TargetSet(specs, (3389,))]
    assert ts == [
        "host-a:3389",
        "host-b:3390",
        "127.0.0.3:3389",
        "127.0.0.1:3389",
        "127.0.0.2:3389",
        "10.9.0.0:3389",
        "10.9.0.1:3389",
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("127.0.0.1\n\n10.0.0.0/40\n")
    with pytest.raises(TargetError, match=r"bad\.txt:3: '10\.0\.0\.0/40' is not a valid CIDR"):
        load_specs([], [str(bad)], [])
    with pytest.raises(TargetError, match="cannot read"):
        load_specs([], [str(tmp_path / "missing.txt")], [])


def test_duplicates_probed_once_in_first_seen_order():
    got = expand(
        ["10.0.0.2-10.0.0.5", "10.0.0.0/29", "10.0.0.4", "10.0.0.1-3", "h", "H", "h:3389"],
        ports=(3389, 3390),
    )
    assert len(got) == len(set(got)) == 8 * 2 + 2
    assert got[:4] == ["10.0.0.2:3389", "10.0.0.2:3390", "10.0.0.3:3389", "10.0.0.3:3390"]
    assert got[8:12] == ["10.0.0.0:3389", "10.0.0.0:3390", "10.0.0.1:3389", "10.0.0.1:3390"]
    # an explicit port overlapping the port list is still one target:port
    assert expand(["127.0.0.1:3390", "127.0.0.0/31"], ports=(3389, 3390)) == [
        "127.0.0.1:3390",
        "127.0.0.0:3389",
        "127.0.0.0:3390",
        "127.0.0.1:3389",
    ]


def test_excludes_in_every_form():
    got = expand(
        ["10.1.0.0/24", "2001:db8::/126", "keep", "drop"],
        excludes=["10.1.0.0/25", "10.1.0.200-10.1.0.255", "10.1.0.128-130", "2001:db8::1", "drop"],
    )
    v4 = [g for g in got if g.startswith("10.")]
    assert v4[0] == "10.1.0.131:3389" and v4[-1] == "10.1.0.199:3389"
    assert len(v4) == 199 - 131 + 1
    assert "[2001:db8::1]:3389" not in got and "[2001:db8::2]:3389" in got
    assert "keep:3389" in got and not any(g.startswith("drop") for g in got)
    # an exclude with a port removes that port only
    assert expand(["127.0.0.1"], ports=(1, 2), excludes=["127.0.0.1:2"]) == ["127.0.0.1:1"]
    # a large octet pattern (kept as a pattern, not intervals) still excludes
    got = expand(["10.2.0.0/22"], excludes=["10.2.0-3.0-200"])
    assert len(got) == 4 * 55 and all(int(g.split(":")[0].split(".")[3]) > 200 for g in got)


def test_lazy_expansion_of_a_slash_8_is_instant_and_flat():
    targets = TargetSet(load_specs(["10.0.0.0/8"], [], []), (3389,))
    assert targets.upper_bound() == 2**24
    tracemalloc.start()
    try:
        start = time.monotonic()
        first = list(itertools.islice(iter(targets), 1000))
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(first[0]) == "10.0.0.0:3389" and str(first[-1]) == "10.0.3.231:3389"
    assert elapsed < 0.5
    assert peak < 2_000_000  # the 1000 Targets themselves, nothing proportional to the /8


def test_exclude_of_half_a_slash_8_is_skipped_not_walked():
    targets = TargetSet(
        load_specs(["10.0.0.0/8"], [], []), (3389,), load_specs(["10.0.0.0/9"], [], [])
    )
    start = time.monotonic()
    first = next(iter(targets))
    assert time.monotonic() - start < 0.5
    assert first == Target("10.128.0.0", 3389, True)


def test_ipv6_slash_64_streams():
    first = list(itertools.islice(iter(TargetSet([parse_spec("2001:db8::/64")], (3389,))), 3))
    assert [t.host for t in first] == ["2001:db8::", "2001:db8::1", "2001:db8::2"]


def test_interval_set_merges():
    s = IntervalSet()
    for lo, hi in [(10, 20), (30, 40), (21, 29), (5, 7), (100, 100), (8, 8), (41, 41)]:
        s.add(lo, hi)
    assert list(s.intervals()) == [(5, 8), (10, 41), (100, 100)]
    assert 5 in s and 41 in s and 9 not in s and 42 not in s and 4 not in s and 100 in s
    assert s.until(12) == 41 and s.until(99) is None and s.count() == 4 + 32 + 1
    s.add(9, 9)
    assert list(s.intervals()) == [(5, 41), (100, 100)]


def test_shards_are_disjoint_and_cover_the_set():
    targets = TargetSet(
        load_specs(["127.0.0.0/23", "2001:db8::/120", "a", "b", "c"], [], []), (3389, 3390)
    )
    everything = [str(t) for t in targets]
    for n in (1, 2, 3, 7):
        shares = [[str(t) for t in select(targets, k, n)] for k in range(1, n + 1)]
        seen = [t for share in shares for t in share]
        assert sorted(seen) == sorted(everything) and len(seen) == len(set(seen))
        for share in shares:  # roughly 1/N each, and in the original order
            assert abs(len(share) - len(everything) / n) < 0.2 * len(everything) / n + 10
            assert share == [t for t in everything if t in set(share)]
    # arithmetic: shard K takes the indices equal to K-1 modulo N, the same on every machine
    assert [str(t) for t in select(targets, 2, 3)][:2] == ["127.0.0.0:3390", "127.0.0.2:3389"]


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "x/4", "1-4", "1/"])
def test_bad_shard(text):
    with pytest.raises(TargetError, match="--shard"):
        parse_shard(text)
