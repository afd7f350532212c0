"""A sweep command line read without typer: the quick path of `rdprobe sweep` (rdprobe.cli.main).

typer 0.29 builds a pydantic adapter for each of sweep's twenty parameters as it parses, and
typer with its pydantic and rich imports came to 0.09 s of the 0.19 s a sweep of one refused
address took (README, Benchmarks). A command line made only of sweep's options, in the forms
typer itself would read the same way, is read here; anything else (``--help``, an unknown
option, a value typer would turn down or word differently, ``--``, attached short values, what
Click expands on Windows) goes to typer, which says what is wrong. The option names and kinds
below are the typer command's (rdprobe.cli.sweep), the bounds are rdprobe.cli.values.RANGES,
and the defaults are run_sweep's: tests/test_cli_quick.py holds them equal.
"""

from __future__ import annotations

import math
import os
import sys

from rdprobe.cli import TYPER_ENV, WINDOWS_EXPANDED
from rdprobe.cli.values import RANGES

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

#: Each option's names -> (run_sweep's parameter, kind): "list" (repeatable), "str", "flag",
#: "int" or "float" (checked against RANGES when the parameter has bounds there).
OPTIONS: dict[str, tuple[str, str]] = {
    "-iL": ("input_list", "list"),
    "--input-list": ("input_list", "list"),
    "--exclude": ("exclude", "list"),
    "--exclude-file": ("exclude_file", "list"),
    "--ports": ("ports", "str"),
    "--depth": ("depth", "str"),
    "--concurrency": ("concurrency", "int"),
    "--rate": ("rate", "float"),
    "--per-host": ("per_host", "int"),
    "--timeout": ("timeout", "float"),
    "--retries": ("retries", "int"),
    "--cookie": ("cookie", "str"),
    "-o": ("output", "str"),
    "--output": ("output", "str"),
    "--json": ("as_json", "flag"),
    "--csv": ("csv_file", "str"),
    "--resume": ("resume", "str"),
    "--shard": ("shard", "str"),
    "--shards": ("shards", "int"),
    "--workers": ("workers", "int"),
    "--table": ("table", "flag"),
}


def _number(text: str, kind: str, bounds: tuple[float | None, float | None]) -> float | None:
    """The value of a plain decimal number within its bounds, or None (typer's to judge)."""
    body = text[1:] if text[:1] == "-" else text
    digits = body.replace(".", "", 1) if kind == "float" else body
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    value = float(text) if kind == "float" else int(text)
    low, high = bounds
    if not math.isfinite(value) or (low is not None and value < low):
        return None
    if high is not None and value > high:
        return None
    return value


def quick_sweep(argv: list[str]) -> dict[str, Any] | None:
    """run_sweep's keyword arguments for ``sweep ...`` made of its options alone, or None for
    a command line typer must read (RDPROBE_CLI_TYPER=1 sends every one there)."""
    if len(argv) < 2 or argv[0] != "sweep" or os.environ.get(TYPER_ENV) == "1":
        return None
    if sys.platform == "win32" and any(c in a for a in argv for c in WINDOWS_EXPANDED):
        return None
    out: dict[str, Any] = {}
    targets: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "-" or not arg.startswith("-"):
            targets.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        if name not in OPTIONS or (eq and not name.startswith("--")):
            return None  # typer knows it or says it is unknown
        param, kind = OPTIONS[name]
        if kind == "flag":
            if eq:
                return None
            out[param] = True
            continue
        value = attached if eq else next(rest, None)
        if value is None or (value.startswith("-") and value != "-" and kind in ("str", "list")):
            return None  # a missing value, or an option where a value should be
        if kind == "list":
            out.setdefault(param, []).append(value)
        elif kind == "str":
            out[param] = value
        else:
            number = _number(value, kind, RANGES.get(param, (None, None)))
            if number is None:
                return None
            out[param] = number
    if targets:
        out["targets"] = targets
    return out
