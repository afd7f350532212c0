"""`rdprobe check TARGET...`: diagnose RDP listeners, one report per target:port."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer

from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.cli.options import (
    CookieOpt,
    DepthOpt,
    JsonOpt,
    PortsOpt,
    TimeoutOpt,
    VerboseOpt,
    check_cookie,
    check_depth,
    overrides,
)
from rdprobe.cli.options import (
    targets as parse_targets,
)
from rdprobe.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOKIE,
    DEFAULT_PER_HOST,
    DEFAULT_TIMEOUT_S,
)

if TYPE_CHECKING:
    from rdprobe.analysis.classify import Report
    from rdprobe.api import Depth
    from rdprobe.live.check import CheckOptions
    from rdprobe.live.credentials import Credentials
    from rdprobe.live.target import Target


async def check_all(targets: list[Target], opts: CheckOptions, concurrency: int) -> list[Report]:
    """Every target, ``concurrency`` at once, reports in order (``find`` uses it too)."""
    import asyncio

    from rdprobe.live.check import check_target

    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(t: Target) -> list[Report]:
        async with limit:
            return await check_target(t, opts)

    nested = await asyncio.gather(*(one(t) for t in targets))
    return [r for group in nested for r in group]


def emit(reports: list[Report], as_json: bool, verbose: bool, *, table: str | None = None) -> None:
    """JSON Lines, or the human report; ``table`` ("severity", "target", "input") adds the
    compact table of all reports after it ("only:..." prints the table alone)."""
    import sys

    from rich.console import Console

    from rdprobe.render import human, jsonl

    if as_json:
        jsonl.write_jsonl(reports, sys.stdout)
        return
    console = Console(highlight=False)
    only = table is not None and table.startswith("only:")
    if not only:
        human.render(reports, console, verbose=verbose)
    if table is not None:
        from rdprobe.render import rows
        from rdprobe.render import table as table_mod

        views = [rows.view(jsonl.report_dict(r)) for r in reports]
        if not only:
            console.print()
        table_mod.render(views, table_mod.wide_console(), sort=table.removeprefix("only:"))


SortOpt = Annotated[
    str,
    typer.Option(
        metavar="ORDER",
        help="Order of the table: severity (worst first), target, or input.",
    ),
]


def _credentials(
    user: str | None,
    without_nla: bool,
    targets: list[Target],
    repeat: int,
    all_addresses: bool,
    depth: str,
) -> Credentials | None:
    """--user: one account, one logon on one address (repeated logons can lock an account)."""
    from rdprobe.live.credentials import CredentialError, Credentials, parse_user, read_password

    if user is None:
        if without_nla:
            raise UsageError("--logon-without-nla needs --user")
        return None
    if len(targets) != 1 or repeat != 1 or all_addresses or depth != "full":
        raise UsageError(
            "--user logs on to one target: one address, no --ports, --repeat or "
            "--all-addresses, depth full"
        )
    try:
        domain, name = parse_user(user)
        return Credentials(name, domain, read_password())
    except CredentialError as exc:
        raise UsageError(str(exc)) from None


async def _check_as(
    target: Target, credentials: Credentials, without_nla: bool, **options: Any
) -> Report:
    """One report for one address, with the auth stage (rdprobe.live.auth_stage)."""
    from rdprobe.api import _options
    from rdprobe.live.check import check_target

    opts = replace(_options(**options), credentials=credentials, logon_without_nla=without_nla)
    (report,) = await check_target(target, opts)
    return report


def check(
    targets: Annotated[
        list[str],
        typer.Argument(metavar="TARGET", help="host, host:port, [v6addr]:port or an IP literal"),
    ],
    ports: PortsOpt = None,
    repeat: Annotated[
        int, typer.Option(min=1, max=10000, metavar="N", help="Probe N times (intermittency).")
    ] = 1,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: Annotated[
        int, typer.Option(min=0, max=10, metavar="N", help="Retries of timed-out connects.")
    ] = 0,
    cookie: CookieOpt = DEFAULT_COOKIE,
    concurrency: Annotated[
        int, typer.Option(min=1, max=10000, metavar="N", help="Targets probed at once.")
    ] = DEFAULT_CONCURRENCY,
    per_host: Annotated[
        int,
        typer.Option(min=1, max=64, metavar="N", help="Connections open at once to one host."),
    ] = DEFAULT_PER_HOST,
    all_addresses: Annotated[
        bool, typer.Option("--all-addresses", help="Probe every address of a name.")
    ] = False,
    depth: DepthOpt = "full",
    udp: Annotated[
        bool, typer.Option("--udp", help="Also probe RDP over UDP on the port.")
    ] = False,
    ca_file: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="Trust these CA certificates (PEM) for the TLS check."),
    ] = None,
    resolve: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME:ADDR[,ADDR]",
            help="Probe ADDR but check the certificate against NAME (repeatable).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    table: Annotated[
        bool,
        typer.Option(
            "--table", help="Only the compact table (shown after the reports of 2+ targets)."
        ),
    ] = False,
    sort: SortOpt = "input",
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="[DOMAIN\\]NAME",
            help="Log on as this account (password from RDPROBE_PASSWORD or a no-echo prompt).",
        ),
    ] = None,
    logon_without_nla: Annotated[
        bool,
        typer.Option(
            "--logon-without-nla",
            help="With --user: also log on where the server offers no NLA (over TLS only).",
        ),
    ] = False,
) -> None:
    """Diagnose RDP listeners: TCP, X.224 negotiation, wrong services, and the later stages."""
    from rdprobe.analysis.ports import port_summary
    from rdprobe.analysis.severity import exit_code
    from rdprobe.api import check_many
    from rdprobe.cli.app import run_async

    check_depth(depth)
    check_cookie(cookie)
    parsed = parse_targets(targets, ports)
    resolved = overrides(resolve or [])
    if ca_file is not None and not os.path.isfile(ca_file):
        raise UsageError(f"--ca-file {ca_file}: no such file")
    from rdprobe.render.rows import SORTS

    if sort not in SORTS:
        raise UsageError(f"--sort must be severity, target or input, not {excerpt(sort)}")
    credentials = _credentials(user, logon_without_nla, parsed, repeat, all_addresses, depth)
    finished: list[Report] = []
    try:
        if credentials is not None:
            reports = [
                run_async(
                    _check_as(parsed[0], credentials, logon_without_nla, timeout=timeout,
                              depth=depth, cookie=cookie, per_host=per_host, retries=retries,
                              udp=udp, ca_file=ca_file, resolve=resolved)
                )
            ]  # fmt: skip
        else:
            # options are checked above (typer: the ranges), so the library raises no ValueError
            reports = run_async(
                check_many(
                    parsed,
                    concurrency=concurrency,
                    all_addresses=all_addresses,
                    timeout=timeout,
                    depth=cast("Depth", depth),  # checked above
                    cookie=cookie,
                    per_host=per_host,
                    repeat=repeat,
                    retries=retries,
                    udp=udp,
                    ca_file=ca_file,
                    resolve=resolved,
                    on_report=finished.append,
                )
            )
    except KeyboardInterrupt:
        interrupted(finished, len(parsed), as_json, verbose)
    finally:
        if credentials is not None:
            credentials.clear()
    if ports is not None:
        reports = port_summary(reports)
    shown = f"only:{sort}" if table else (sort if len(reports) > 1 else None)
    emit(reports, as_json, verbose, table=shown)
    raise typer.Exit(int(exit_code((r.outcome, r.worst) for r in reports)))


def interrupted(finished: list[Report], total: int, as_json: bool, verbose: bool) -> NoReturn:
    """Ctrl-C: print what finished (as it would have been printed), then exit 130."""
    from rdprobe.analysis.severity import ExitCode
    from rdprobe.cli.errors import say

    if finished:
        emit(finished, as_json, verbose, table="input" if len(finished) > 1 else None)
    say(f"rdprobe: interrupted; {len(finished)} of {total} target(s) finished (shown above)")
    raise typer.Exit(int(ExitCode.INTERRUPTED))
