"""`rdprobe sweep`: many targets, streamed, resumable and sharded.

targets (lazy expansion of CIDR blocks, ranges, octet ranges, names and files), shard (a
deterministic 1/N share), runner (the asyncio scheduler), resume, merge and summary.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rdprobe.sweep.runner import SweepOptions, run_sweep
    from rdprobe.sweep.shard import parse_shard, resolve_shard, select
    from rdprobe.sweep.stats import SweepStats
    from rdprobe.sweep.targets import TargetSet, parse_spec, read_specs

#: public name -> its module, loaded on first use (the sweep's parent process and workers
#: import only the modules they need: the runner and the classifier are the heavy ones)
_EXPORTS = {
    "SweepOptions": "rdprobe.sweep.runner",
    "run_sweep": "rdprobe.sweep.runner",
    "SweepStats": "rdprobe.sweep.stats",
    "TargetSet": "rdprobe.sweep.targets",
    "parse_spec": "rdprobe.sweep.targets",
    "read_specs": "rdprobe.sweep.targets",
    "parse_shard": "rdprobe.sweep.shard",
    "resolve_shard": "rdprobe.sweep.shard",
    "select": "rdprobe.sweep.shard",
}

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

    def __getattr__(self, name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(self, name, value)
        return value


sys.modules[__name__].__class__ = _SweepPackage
