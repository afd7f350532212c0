"""`rdprobe find HOST`: which port(s) RDP answers on (the "confirm the port changed" step)."""

from __future__ import annotations

from typing import Annotated

import typer

from rdprobe.cli.options import JsonOpt, TimeoutOpt, targets
from rdprobe.defaults import DEFAULT_CONCURRENCY, FIND_PORTS, FIND_TIMEOUT_S


def find(
    host: Annotated[str, typer.Argument(metavar="HOST", help="host or IP literal")],
    ports: Annotated[str, typer.Option(metavar="PORTS", help="Ports to try.")] = FIND_PORTS,
    timeout: TimeoutOpt = FIND_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Find the port(s) RDP answers on, and what answers on the usual port instead."""
    from rdprobe.analysis.ports import find_view, port_summary
    from rdprobe.analysis.severity import ExitCode
    from rdprobe.cli.app import run_async
    from rdprobe.cli.check import check_all, emit
    from rdprobe.live.check import CheckOptions
    from rdprobe.live.timing import Timeouts

    parsed = targets([host], ports)
    opts = CheckOptions(timeouts=Timeouts.from_timeout(timeout), depth="x224")
    shown = find_view(port_summary(run_async(check_all(parsed, opts, DEFAULT_CONCURRENCY))))
    emit(shown, as_json, False)
    raise typer.Exit(int(ExitCode.OK if any(r.rdp for r in shown) else ExitCode.PROBLEM))
