"""`--shard K/N`: a 1/N share of the target space, picked arithmetically, with no coordinator.

Every target:port has an index in the sweep's order before de-duplication and excludes
(`TargetSet.stride`); shard K (1-based, like ``masscan --shard``) takes the indices equal to K-1
modulo N. So a share of any size starts at once and costs O(1) per target (a one-millionth of
0.0.0.0/0 is every millionth address, computed, not searched for), and N shards of the same
target list and ports are disjoint and together cover it. Every copy must be given the same
targets, excludes and ports in the same order: the index is their position in that list.

``--shard auto`` takes K and N from the array-job runner the process runs under (`from_env`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from rdprobe.live.target import Target, TargetError
from rdprobe.sweep.arrayjob import from_env
from rdprobe.sweep.targets import TargetSet

#: Any N a person can type is fine; this only keeps the number a number.
MAX_SHARDS = 10**18


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; TargetError with one line otherwise."""
    k_s, slash, n_s = text.strip().partition("/")
    if not slash or not k_s.isdigit() or not n_s.isdigit() or len(k_s) > 19 or len(n_s) > 19:
        raise TargetError(f"--shard {text!r}: write K/N, e.g. 1/4 (K from 1 to N), or auto")
    return check_shard(int(k_s), int(n_s), f"--shard {text!r}")


def resolve_shard(text: str, shards: int | None, env: Mapping[str, str]) -> tuple[int, int]:
    """``--shard`` (K/N or auto) with ``--shards N`` -> (K, N); TargetError with one line."""
    if text.strip().lower() == "auto":
        return from_env(env, shards)
    k, n = parse_shard(text)
    if shards is not None and shards != n:
        raise TargetError(f"--shard {text!r} is of {n} shards but --shards says {shards}")
    return k, n


def check_shard(k: int, n: int, what: str) -> tuple[int, int]:
    if not 1 <= n <= MAX_SHARDS:
        raise TargetError(f"{what}: N must be 1 to {MAX_SHARDS:.0e}")
    if not 1 <= k <= n:
        raise TargetError(f"{what}: K must be 1 to {n}")
    return k, n


def select(
    targets: TargetSet, k: int, n: int, worker: int = 0, workers: int = 1
) -> Iterator[Target]:
    """The targets of shard K of N, in their original order; with ``workers`` > 1, the share
    of worker ``worker`` (0-based) of that shard: every ``workers``-th of its indices."""
    return targets.stride((k - 1) + n * worker, n * workers)
