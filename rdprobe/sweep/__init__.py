"""`rdprobe sweep`: many targets, streamed, resumable and sharded.

targets (lazy expansion of CIDR blocks, ranges, octet ranges, names and files), shard (a
deterministic 1/N share), runner (the asyncio scheduler), resume, merge and summary.
"""

from rdprobe.sweep.runner import SweepOptions, SweepStats, run_sweep
from rdprobe.sweep.shard import in_shard, parse_shard
from rdprobe.sweep.targets import TargetSet, parse_spec, read_specs

__all__ = [
    "SweepOptions",
    "SweepStats",
    "TargetSet",
    "in_shard",
    "parse_shard",
    "parse_spec",
    "read_specs",
    "run_sweep",
]
