"""The checks of option values the commands share: one place, with or without typer.

typer parses the command line and checks ranges; these check what a type cannot (a target, a
depth, a cookie, ``--resolve`` pairs) and raise :class:`~rdprobe.cli.errors.UsageError`. No
typer here: ``rdprobe check TARGET...`` runs them on its quick path (rdprobe.cli.main).
"""

from __future__ import annotations

from rdprobe.cli.errors import UsageError, excerpt

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from rdprobe.live.target import Target

#: The bounds (inclusive; None: none) of the numeric options, for typer's declarations and for
#: sweep's quick path (rdprobe.cli.sweep_args), which leaves a value outside them to typer.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "timeout": (0.05, 600),
    "concurrency": (1, 100_000),
    "rate": (0.1, None),
    "per_host": (1, 1024),
    "retries": (0, 10),
    "shards": (1, None),
    "workers": (0, 256),
}

DEPTHS = ("tcp", "x224", "full")
#: sweep also takes "session": depth full plus the walk to the logon screen on every server
SWEEP_DEPTHS = (*DEPTHS, "session")


def check_depth(depth: str, allowed: tuple[str, ...] = DEPTHS) -> None:
    if depth not in allowed:
        names = ", ".join(allowed[:-1]) + f" or {allowed[-1]}"
        raise UsageError(f"--depth must be {names}, not {excerpt(depth)}")


def check_cookie(cookie: str) -> None:
    from rdprobe.protocol.x224_values import valid_cookie  # the builder's own check

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
