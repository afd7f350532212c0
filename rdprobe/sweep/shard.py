"""`--shard K/N`: a deterministic 1/N share of the target space, with no coordinator.

A target:port belongs to shard K (1-based, like ``masscan --shard``) when a stable hash of its
text, ``host:port`` or ``[v6]:port``, is K-1 modulo N. BLAKE2b is the same on every platform and
Python version, so N copies on N machines split any target list into disjoint shares that together
cover it, whatever order each copy expands it in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from rdprobe.live.target import Target, TargetError

MAX_SHARDS = 1_000_000


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; TargetError with one line otherwise."""
    k_s, slash, n_s = text.strip().partition("/")
    if not slash or not k_s.isdigit() or not n_s.isdigit():
        raise TargetError(f"--shard {text!r}: write K/N, e.g. 1/4 (K from 1 to N)")
    k, n = int(k_s), int(n_s)
    if not 1 <= n <= MAX_SHARDS:
        raise TargetError(f"--shard {text!r}: N must be 1 to {MAX_SHARDS}")
    if not 1 <= k <= n:
        raise TargetError(f"--shard {text!r}: K must be 1 to {n}")
    return k, n


def shard_of(key: str, n: int) -> int:
    """The 0-based shard of a target:port text among n."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def in_shard(target: Target | str, k: int, n: int) -> bool:
    return n == 1 or shard_of(str(target), n) == k - 1


def select(targets: Iterable[Target], k: int, n: int) -> Iterator[Target]:
    """The targets of shard K of N, in their original order."""
    if n == 1:
        yield from targets
        return
    for t in targets:
        if shard_of(str(t), n) == k - 1:
            yield t
