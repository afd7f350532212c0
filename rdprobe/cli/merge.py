"""`rdprobe merge FILE...`: sweep results of several runs as one row per target:port."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from typing import Annotated

import typer

from rdprobe.cli.errors import UsageError


def merge(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE", help="JSON Lines files from rdprobe sweep")
    ],
    output: Annotated[
        str | None, typer.Option("-o", "--output", metavar="FILE", help="Write to FILE.")
    ] = None,
) -> None:
    """Merge sweep results: one row per target:port, the latest wins, conflicts reported."""
    from rich.console import Console

    from rdprobe.cli.sweep_run import _open
    from rdprobe.sweep import merge as merge_mod

    for f in files:
        if not os.path.isfile(f):
            raise UsageError(f"cannot read {f}: no such file")
    err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    with ExitStack() as stack:
        out = stack.enter_context(_open(output, "w")) if output else sys.stdout
        result = merge_mod.merge_files(files, out, report=lambda line: err.print(line))
    err.print(
        f"rdprobe merge: {result.rows_out} target:ports from {result.rows_read} rows in "
        f"{result.files} files; {result.duplicates} duplicates, {result.conflicts} conflicts"
        + (f", {result.bad_lines} lines skipped (not result rows)" if result.bad_lines else "")
    )
