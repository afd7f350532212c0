"""Options shared by several commands, and the checks of their values.

Help texts are plain text (the app has no rich markup), so ``[v6addr]:port`` prints as written.
Nothing here loads asyncio, ssl or cryptography: ``rdprobe --help`` builds every command from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.defaults import DEFAULT_COOKIE, DEFAULT_TIMEOUT_S

if TYPE_CHECKING:
    from rdprobe.live.target import Target

DEPTHS = ("tcp", "x224", "full")
#: sweep also takes "session": depth full plus the walk to the logon screen on every server
SWEEP_DEPTHS = (*DEPTHS, "session")

TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout", min=0.05, max=600, metavar="SECONDS", help="Seconds for each network step."
    ),
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
    "SWEEP_DEPTHS",
    "CookieOpt",
    "DepthOpt",
    "JsonOpt",
    "PortsOpt",
    "TimeoutOpt",
    "VerboseOpt",
    "check_cookie",
    "check_depth",
    "overrides",
    "targets",
]


def check_depth(depth: str, allowed: tuple[str, ...] = DEPTHS) -> None:
    if depth not in allowed:
        names = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise UsageError(f"--depth must be {names}, not {excerpt(depth)}")


def check_cookie(cookie: str) -> None:
    from rdprobe.protocol.x224 import valid_cookie  # the builder's own check

    if not valid_cookie(cookie):
        raise UsageError("--cookie must be ASCII without line breaks")


def targets(texts: list[str], ports: str | None) -> list[Target]:
    """The targets of `check` / `find`, each on every port of ``--ports`` when given."""
    from rdprobe.live.target import Target, TargetError, parse_ports, parse_target

    try:
        parsed = [parse_target(t) for t in texts]
        if ports is None:
            return parsed
        port_list = parse_ports(ports)
        return [Target(t.host, p, t.is_literal) for t in parsed for p in port_list]
    except TargetError as exc:
        raise UsageError(str(exc)) from None


def overrides(pairs: list[str]) -> dict[str, list[str]]:
    """--resolve NAME:ADDR[,ADDR...] (an IPv6 ADDR with or without brackets); repeatable."""
    from rdprobe.live.target import TargetError, parse_target

    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, addrs = pair.partition(":")
        hosts = []
        for addr in addrs.split(",") if sep else [""]:
            try:
                target = parse_target(addr.strip().strip("[]"))
            except TargetError:
                target = None
            if not name or target is None or not target.is_literal:
                raise UsageError(f"--resolve {excerpt(pair)}: expected NAME:ADDRESS[,ADDRESS...]")
            hosts.append(target.host)
        out.setdefault(name.lower().rstrip("."), []).extend(hosts)
    return out
