"""Options shared by several commands (their checks: rdprobe.cli.values).

Help texts are plain text (the app has no rich markup), so ``[v6addr]:port`` prints as written.
Nothing here loads asyncio, ssl or cryptography: ``rdprobe --help`` builds every command from it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

# The checks of the values live in rdprobe.cli.values (no typer: the command line's quick path
# for `check TARGET...` runs them without loading typer); re-exported here for the commands.
from rdprobe.cli.values import (
    DEPTHS,
    RANGES,
    SWEEP_DEPTHS,
    check_cookie,
    check_depth,
    overrides,
    targets,
)
from rdprobe.defaults import DEFAULT_COOKIE, DEFAULT_TIMEOUT_S


def bounded(name: str, help: str, metavar: str = "N", *decls: str) -> Any:
    """A numeric option whose bounds are RANGES[name] (the quick parser of sweep checks the
    same ones)."""
    low, high = RANGES[name]
    return typer.Option(*decls, min=low, max=high, metavar=metavar, help=help)


TimeoutOpt = Annotated[
    float,
    bounded("timeout", "Seconds for each network step.", "SECONDS", "--timeout"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per target:port.")]
VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="Cause and fix for every finding.")
]
DepthOpt = Annotated[
    str,
    typer.Option(
        metavar="DEPTH",
        help="tcp (connect only), x224 (RDP negotiation) or full (TLS, NLA, MCS and the walk"
        " to the logon screen too).",
    ),
]
CookieOpt = Annotated[
    str, typer.Option(metavar="NAME", help="mstshash cookie (user name) to send.")
]
PortsOpt = Annotated[
    str | None,
    typer.Option(metavar="PORTS", help="Probe these ports of every target: 3389,3388-3399."),
]

__all__ = [
    "DEFAULT_COOKIE",
    "DEFAULT_TIMEOUT_S",
    "DEPTHS",
    "SWEEP_DEPTHS",
    "CookieOpt",
    "DepthOpt",
    "JsonOpt",
    "PortsOpt",
    "TimeoutOpt",
    "VerboseOpt",
    "bounded",
    "check_cookie",
    "check_depth",
    "overrides",
    "targets",
]
