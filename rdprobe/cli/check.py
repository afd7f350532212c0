"""`rdprobe check TARGET...`: diagnose RDP listeners, one report per target:port.

Every option is declared here, once; what the command does with them is
rdprobe.cli.check_run.run_check (no typer there), which ``rdprobe check TARGET...`` without options
also reaches without loading typer (rdprobe.cli.main).
"""

from __future__ import annotations

from typing import Annotated

import typer

from rdprobe.cli.check_run import check_all, emit, run_check
from rdprobe.cli.options import (
    CookieOpt,
    DepthOpt,
    JsonOpt,
    PortsOpt,
    TimeoutOpt,
    VerboseOpt,
    bounded,
)
from rdprobe.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOKIE,
    DEFAULT_DEPTH,
    DEFAULT_PER_HOST,
    DEFAULT_REPEAT,
    DEFAULT_RETRIES,
    DEFAULT_SORT,
    DEFAULT_TIMEOUT_S,
)

__all__ = ["check", "check_all", "emit"]

SortOpt = Annotated[
    str,
    typer.Option(
        metavar="ORDER",
        help="Order of the table: severity (worst first), target, or input.",
    ),
]


def check(
    targets: Annotated[
        list[str],
        typer.Argument(metavar="TARGET", help="host, host:port, [v6addr]:port or an IP literal"),
    ],
    ports: PortsOpt = None,
    repeat: Annotated[
        int, typer.Option(min=1, max=10000, metavar="N", help="Probe N times (intermittency).")
    ] = DEFAULT_REPEAT,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: Annotated[
        int,
        bounded("retries", "Retries of timed-out connects."),
    ] = DEFAULT_RETRIES,
    cookie: CookieOpt = DEFAULT_COOKIE,
    concurrency: Annotated[
        int, typer.Option(min=1, max=10000, metavar="N", help="Targets probed at once.")
    ] = DEFAULT_CONCURRENCY,
    per_host: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            metavar="N",
            help="Connections being opened at once to one host (not yet answered).",
        ),
    ] = DEFAULT_PER_HOST,
    all_addresses: Annotated[
        bool, typer.Option("--all-addresses", help="Probe every address of a name.")
    ] = False,
    depth: DepthOpt = DEFAULT_DEPTH,
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
    sort: SortOpt = DEFAULT_SORT,
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
    code = run_check(
        targets,
        ports=ports,
        repeat=repeat,
        timeout=timeout,
        retries=retries,
        cookie=cookie,
        concurrency=concurrency,
        per_host=per_host,
        all_addresses=all_addresses,
        depth=depth,
        udp=udp,
        ca_file=ca_file,
        resolve=resolve,
        as_json=as_json,
        verbose=verbose,
        table=table,
        sort=sort,
        user=user,
        logon_without_nla=logon_without_nla,
    )
    raise typer.Exit(code)
