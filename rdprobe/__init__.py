"""rdprobe: tell from the wire alone why an RDP connection to a Terminal Server fails.

The library interface (typed; see README "Use it from Python")::

    import rdprobe

    report = await rdprobe.check("ts1.example.com:3389")   # or rdprobe.check_sync(...)
    print(report.outcome, report.worst, [f.title for f in report.findings])

    async for report in rdprobe.sweep(["10.0.0.0/24"], ports="3389,3390"):
        ...
    for report in rdprobe.analyze_pcap("capture.pcapng"):
        ...

Names load on first use, so ``import rdprobe`` (and the command line's start-up) stays cheap.

``TYPE_CHECKING = False`` at the top of a module, in place of ``typing.TYPE_CHECKING``: the
modules that answer a refused port (``rdprobe check HOST``: the quick path, the first connect,
the classifier, the report) import nothing from ``typing`` at run time, which would add ~6 ms
(about 6%) to that whole answer on a slow machine. mypy reads the name alone (any
``TYPE_CHECKING`` is true to it), so the annotations stay checked.
"""

from __future__ import annotations

import importlib

from rdprobe._version import __version__

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

    from rdprobe.analysis.classify import Report
    from rdprobe.analysis.findings import CATALOGUE, Finding, FindingSpec
    from rdprobe.analysis.severity import ExitCode, Severity, exit_code
    from rdprobe.api import Depth, analyze_pcap, as_dict, check, check_many, check_sync, sweep
    from rdprobe.capture.records import CaptureError
    from rdprobe.live.target import Target, TargetError

#: public name -> the module that holds it
_EXPORTS = {
    "check": "rdprobe.api",
    "check_many": "rdprobe.api",
    "check_sync": "rdprobe.api",
    "sweep": "rdprobe",  # the subpackage rdprobe.sweep, which calls rdprobe.api.sweep
    "analyze_pcap": "rdprobe.api",
    "as_dict": "rdprobe.api",
    "Depth": "rdprobe.api",
    "Report": "rdprobe.analysis.classify",
    "Finding": "rdprobe.analysis.findings",
    "FindingSpec": "rdprobe.analysis.findings",
    "CATALOGUE": "rdprobe.analysis.findings",
    "Severity": "rdprobe.analysis.severity",
    "ExitCode": "rdprobe.analysis.severity",
    "exit_code": "rdprobe.analysis.severity",
    "Target": "rdprobe.live.target",
    "TargetError": "rdprobe.live.target",
    "CaptureError": "rdprobe.capture.records",
}

__all__ = [
    "CATALOGUE",
    "CaptureError",
    "Depth",
    "ExitCode",
    "Finding",
    "FindingSpec",
    "Report",
    "Severity",
    "Target",
    "TargetError",
    "__version__",
    "analyze_pcap",
    "as_dict",
    "check",
    "check_many",
    "check_sync",
    "exit_code",
    "sweep",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rdprobe' has no attribute {name!r}")
    if name == "sweep":  # see rdprobe/sweep/__init__.py
        return importlib.import_module("rdprobe.sweep")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
