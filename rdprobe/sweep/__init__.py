"""`rdprobe sweep`: many targets, streamed, resumable and sharded.

targets (lazy expansion of CIDR blocks, ranges, octet ranges, names and files), shard (a
deterministic 1/N share), runner (the asyncio scheduler), resume, merge and summary.
"""

import sys
import types
from typing import Any

from rdprobe.sweep.runner import SweepOptions, SweepStats, run_sweep
from rdprobe.sweep.shard import parse_shard, resolve_shard, select
from rdprobe.sweep.targets import TargetSet, parse_spec, read_specs

__all__ = [
    "SweepOptions",
    "SweepStats",
    "TargetSet",
    "parse_shard",
    "parse_spec",
    "read_specs",
    "resolve_shard",
    "run_sweep",
    "select",
]


class _SweepPackage(types.ModuleType):
    """``rdprobe.sweep`` is this package and, called, the library's sweep
    (:func:`rdprobe.api.sweep`): Python binds a subpackage to its parent's attribute of the
    same name, so the package itself must answer the call."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from rdprobe.api import sweep

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _SweepPackage
