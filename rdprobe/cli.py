"""The command line: thin commands that parse options, call the library and render."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.console import Console

from rdprobe.analysis.classify import Report
from rdprobe.analysis.ports import port_summary
from rdprobe.analysis.severity import ExitCode, Severity
from rdprobe.live.check import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOKIE,
    DEFAULT_PER_HOST,
    CheckOptions,
    check_target,
)
from rdprobe.live.target import Target, TargetError, parse_ports, parse_target
from rdprobe.live.timing import DEFAULT_TIMEOUT_S, Timeouts
from rdprobe.render import human, jsonl

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Tell from the wire alone why a Remote Desktop connection fails.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class UsageError(Exception):
    """Bad input from the user: one line, exit code 2."""


def exit_code(reports: list[Report]) -> ExitCode:
    """0 when every target answered RDP with nothing of warning severity or worse, else 1."""
    if reports and all(r.rdp and r.worst < Severity.WARNING for r in reports):
        return ExitCode.OK
    return ExitCode.PROBLEM


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """typer runs no coroutines itself (an async command silently does nothing)."""
    return asyncio.run(coro)


def _targets(texts: list[str], ports: str | None) -> list[Target]:
    try:
        parsed = [parse_target(t) for t in texts]
        if ports is None:
            return parsed
        port_list = parse_ports(ports)
        return [Target(t.host, p, t.is_literal) for t in parsed for p in port_list]
    except TargetError as exc:
        raise UsageError(str(exc)) from None


def _overrides(pairs: list[str]) -> dict[str, list[str]]:
    """--resolve NAME:ADDR[,ADDR...] (an IPv6 ADDR with or without brackets); repeatable."""
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
                raise UsageError(f"--resolve {pair!r}: expected NAME:ADDRESS[,ADDRESS...]")
            hosts.append(target.host)
        out.setdefault(name.lower().rstrip("."), []).extend(hosts)
    return out


async def _check_all(targets: list[Target], opts: CheckOptions, concurrency: int) -> list[Report]:
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(t: Target) -> list[Report]:
        async with limit:
            return await check_target(t, opts)

    nested = await asyncio.gather(*(one(t) for t in targets))
    return [r for group in nested for r in group]


def _emit(reports: list[Report], as_json: bool, verbose: bool) -> None:
    if as_json:
        jsonl.write_jsonl(reports, sys.stdout)
    else:
        human.render(reports, Console(highlight=False), verbose=verbose)


TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.05, max=600, help="Seconds for each network step.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per target:port.")]


@app.command()
def check(
    targets: Annotated[list[str], typer.Argument(help="host, host:port, [v6]:port, IP literal")],
    ports: Annotated[str | None, typer.Option(help="Probe these ports: 3389,3388-3399")] = None,
    repeat: Annotated[
        int, typer.Option(min=1, max=10000, help="Probe N times (intermittency)")
    ] = 1,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Retries of timed-out connects")] = 0,
    cookie: Annotated[
        str, typer.Option(help="mstshash cookie (user name) to send")
    ] = DEFAULT_COOKIE,
    concurrency: Annotated[
        int, typer.Option(min=1, max=10000, help="Targets at once")
    ] = DEFAULT_CONCURRENCY,
    per_host: Annotated[
        int, typer.Option(min=1, max=64, help="Connections at once per host")
    ] = DEFAULT_PER_HOST,
    all_addresses: Annotated[bool, typer.Option(help="Probe every address of a name")] = False,
    depth: Annotated[str, typer.Option(help="tcp, x224 or full")] = "full",
    udp: Annotated[bool, typer.Option("--udp", help="Also probe RDP over UDP on the port")] = False,
    ca_file: Annotated[
        str | None, typer.Option(help="Trust these CA certificates (PEM) for the TLS check")
    ] = None,
    resolve: Annotated[
        list[str] | None,
        typer.Option(help="NAME:ADDR[,ADDR] - probe ADDR but check the certificate against NAME"),
    ] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Cause and fix for every finding")
    ] = False,
) -> None:
    """Diagnose RDP listeners: TCP, X.224 negotiation, wrong services, and the later stages."""
    if depth not in ("tcp", "x224", "full"):
        raise UsageError(f"--depth must be tcp, x224 or full, not {depth!r}")
    if any(c in cookie for c in "\r\n") or not cookie.isascii():
        raise UsageError("--cookie must be ASCII without line breaks")
    parsed = _targets(targets, ports)
    opts = CheckOptions(
        timeouts=Timeouts.from_timeout(timeout),
        retries=retries,
        cookie=cookie,
        per_host=per_host,
        repeat=repeat,
        all_addresses=all_addresses,
        depth=depth,
        udp=udp,
        ca_file=ca_file,
        resolve=_overrides(resolve or []),
    )
    if ca_file is not None and not os.path.isfile(ca_file):
        raise UsageError(f"--ca-file {ca_file}: no such file")
    reports = _run(_check_all(parsed, opts, concurrency))
    if ports is not None:
        reports = port_summary(reports)
    _emit(reports, as_json, verbose)
    raise typer.Exit(int(exit_code(reports)))


@app.command()
def find(
    host: Annotated[str, typer.Argument(help="host or IP literal")],
    ports: Annotated[
        str, typer.Option(help="Ports to try")
    ] = "3389,3388-3399,443,80,8080,33890-33899",
    timeout: TimeoutOpt = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Find the port(s) RDP answers on: the 'confirm the RDP port changed' step."""
    parsed = _targets([host], ports)
    opts = CheckOptions(timeouts=Timeouts.from_timeout(timeout), depth="x224")
    reports = port_summary(_run(_check_all(parsed, opts, DEFAULT_CONCURRENCY)))
    found = [r for r in reports if r.rdp]
    _emit(found or reports[:1], as_json, False)
    raise typer.Exit(int(ExitCode.OK if found else ExitCode.PROBLEM))


@app.command()
def emulate(
    profile: Annotated[str, typer.Option(help="Emulator profile name (see --list)")] = "win10-nla",
    listen: Annotated[str, typer.Option(help="ADDR:PORT to listen on")] = "127.0.0.1:3389",
    list_profiles: Annotated[bool, typer.Option("--list", help="List the profiles")] = False,
) -> None:
    """Serve an emulated RDP listener whose bytes come from real Windows servers."""
    from rdprobe.emulate import profiles, server

    if list_profiles:
        for name, p in profiles.PROFILES.items():
            typer.echo(f"{name:24} {p.description}")
        return
    if profile not in profiles.PROFILES:
        raise UsageError(f"unknown profile {profile!r}; try --list")
    try:
        server.parse_listen(listen)
    except ValueError as exc:
        raise UsageError(f"--listen {listen!r}: {exc}") from None
    try:
        _run(server.run_emulator(profile, listen))
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    as_json: JsonOpt = False,
) -> None:
    """Start emulated listeners on loopback, check each, and print what rdprobe diagnoses."""
    from rdprobe.emulate.demo import run_demo

    results = _run(run_demo())
    if as_json:
        for r in results:
            row = {"demo_profile": r.profile, **jsonl.report_dict(r.report)}
            sys.stdout.write(jsonl.dumps(row) + "\n")
    else:
        human.render_demo(
            [(r.profile, r.description, r.report) for r in results], Console(highlight=False)
        )


@app.command()
def findings(as_json: JsonOpt = False) -> None:
    """List every finding rdprobe can report: id, severity, title, cause and fix."""
    from rdprobe.analysis.findings import CATALOGUE

    if as_json:
        for spec in CATALOGUE.values():
            row = {"id": spec.id, "severity": str(spec.severity), "title": spec.title}
            sys.stdout.write(json.dumps({**row, "cause": spec.cause, "fix": spec.fix}) + "\n")
        return
    console = Console(highlight=False)
    for spec in CATALOGUE.values():
        console.print(f"[bold]{spec.id}[/bold] ({spec.severity}): {spec.title}", markup=True)
        console.print(f"  Why: {spec.cause}\n  Fix: {spec.fix}", markup=False)


def _is_click_error(exc: BaseException) -> bool:
    """Click's exceptions (typer may bundle its own Click, so they are recognised by shape)."""
    return hasattr(exc, "exit_code") and (
        hasattr(exc, "format_message") or type(exc).__name__ == "Abort"
    )


def _click_error(exc: Any) -> int:
    """Print a Click usage error as one line; return the exit code."""
    name = type(exc).__name__
    if name == "Abort":
        err.print("rdprobe: interrupted")
        return 130
    ctx = getattr(exc, "ctx", None)
    if name == "NoArgsIsHelpError" and ctx is not None:
        Console(highlight=False).print(ctx.get_help(), markup=False)
        return int(ExitCode.USAGE)
    hint = f" (see 'rdprobe {ctx.info_name} --help')" if ctx is not None and ctx.parent else ""
    message = " ".join(exc.format_message().split())
    err.print(f"rdprobe: error: {message}{hint}", markup=False)
    return int(ExitCode.USAGE)


def main() -> None:
    """Console entry point: usage errors and bugs become one line, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        err.print(f"rdprobe: error: {exc}", markup=False)
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        err.print("rdprobe: interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # one line, never a traceback
        if _is_click_error(exc):
            sys.exit(_click_error(exc))
        err.print(f"rdprobe: internal error: {type(exc).__name__}: {exc}", markup=False)
        sys.exit(int(ExitCode.INTERNAL))
    sys.exit(code if isinstance(code, int) else 0)


def _register_subcommands() -> None:
    """Commands that live in their own modules (they import UsageError from here lazily)."""
    from rdprobe.cli_pcap import register as register_pcap
    from rdprobe.cli_sweep import register as register_sweep

    register_sweep(app)
    register_pcap(app)


_register_subcommands()
