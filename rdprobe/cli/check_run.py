"""What `rdprobe check` does once its options are parsed: check them, probe, print, exit code.

No typer here. The typer command (rdprobe.cli.check, where every option is declared) calls
:func:`run_check` with what it parsed; ``rdprobe check TARGET...`` with no option at all calls it
straight from rdprobe.cli.main with the defaults below, which are the typer command's defaults
(the same rdprobe.defaults constants; tests/test_cli_quick.py holds the two signatures equal).

One IP literal, probed once without UDP, is connected to before asyncio is loaded
(rdprobe.live.first_connect): a refused, unreachable or timed-out port is judged from that
connect alone, and an accepted connection goes on to the prober as the primary request's.
"""

from __future__ import annotations

import os
from collections.abc import Coroutine

from rdprobe.cli.errors import UsageError, excerpt
from rdprobe.cli.values import check_cookie, check_depth, overrides
from rdprobe.cli.values import targets as parse_targets
from rdprobe.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOKIE,
    DEFAULT_DEPTH,
    DEFAULT_PER_HOST,
    DEFAULT_REPEAT,
    DEFAULT_RETRIES,
    DEFAULT_SORT,
    DEFAULT_TIMEOUT_S,
    TABLE_SORTS,
)

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

    from rdprobe.analysis.classify import Report
    from rdprobe.live.check import CheckOptions
    from rdprobe.live.credentials import Credentials
    from rdprobe.live.target import Target


def run_check(
    targets: list[str],
    ports: str | None = None,
    repeat: int = DEFAULT_REPEAT,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    cookie: str = DEFAULT_COOKIE,
    concurrency: int = DEFAULT_CONCURRENCY,
    per_host: int = DEFAULT_PER_HOST,
    all_addresses: bool = False,
    depth: str = DEFAULT_DEPTH,
    udp: bool = False,
    ca_file: str | None = None,
    resolve: list[str] | None = None,
    as_json: bool = False,
    verbose: bool = False,
    table: bool = False,
    sort: str = DEFAULT_SORT,
    user: str | None = None,
    logon_without_nla: bool = False,
) -> int:
    """`rdprobe check` with parsed options (ranges already checked by typer, or defaults):
    print the reports and return the exit code. Raises UsageError for a bad value."""
    from rdprobe.analysis.severity import exit_code

    check_depth(depth)
    check_cookie(cookie)
    parsed = parse_targets(targets, ports)
    resolved = overrides(resolve or [])
    if ca_file is not None and not os.path.isfile(ca_file):
        raise UsageError(f"--ca-file {ca_file}: no such file")
    if sort not in TABLE_SORTS:
        raise UsageError(f"--sort must be severity, target or input, not {excerpt(sort)}")
    credentials = _credentials(user, logon_without_nla, parsed, repeat, all_addresses, depth)
    finished: list[Report] = []
    options: dict[str, Any] = dict(
        timeout=timeout, depth=depth, cookie=cookie, per_host=per_host, retries=retries,
        udp=udp, ca_file=ca_file, resolve=resolved,
    )  # fmt: skip
    try:
        if credentials is not None:
            reports = [run_async(_check_as(parsed[0], credentials, logon_without_nla, **options))]
        elif len(parsed) == 1 and parsed[0].is_literal and repeat == 1 and not udp:
            reports = [_check_one(parsed[0], options, finished)]
        else:
            from rdprobe.api import check_many

            # options are checked above (typer: the ranges), so the library raises no ValueError
            reports = run_async(
                check_many(
                    parsed,
                    concurrency=concurrency,
                    all_addresses=all_addresses,
                    repeat=repeat,
                    on_report=finished.append,
                    **{**options, "depth": depth},  # checked above
                )
            )
    except KeyboardInterrupt:
        return interrupted(finished, len(parsed), as_json, verbose)
    finally:
        if credentials is not None:
            credentials.clear()
    if ports is not None:
        from rdprobe.analysis.ports import port_summary

        reports = port_summary(reports)
    shown = f"only:{sort}" if table else (sort if len(reports) > 1 else None)
    emit(reports, as_json, verbose, table=shown)
    return int(exit_code((r.outcome, r.worst) for r in reports))


def _check_one(target: Target, options: dict[str, Any], finished: list[Report]) -> Report:
    """One IP literal: its first connect before asyncio; the prober only when it connected (or
    timed out with retries left). The same report check_many makes of it."""
    from datetime import UTC, datetime

    from rdprobe.live.first_connect import connect_first, judge_first

    timeout, depth, retries = options["timeout"], options["depth"], options["retries"]
    first = connect_first(target.host, target.port, timeout)
    if first is not None and first.settles(retries, depth):
        report = judge_first(
            target,
            first,
            timeout_s=timeout,
            cookie=options["cookie"],
            depth=depth,
            clock=lambda: datetime.now(UTC),
        )
    else:
        from rdprobe.api import _options
        from rdprobe.live.check import probe_address

        opts = _options(**options)
        report = run_async(probe_address(target, target.host, opts, first_connect=first))
    finished.append(report)
    return report


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

    if as_json:
        from rdprobe.render import jsonl

        jsonl.write_jsonl(reports, sys.stdout)
        return
    only = table is not None and table.startswith("only:")
    if not only:
        from rdprobe.render import human

        human.render(reports, sys.stdout, verbose=verbose)
    if table is not None:
        from rdprobe.render import jsonl, rows
        from rdprobe.render import table as table_mod

        views = [rows.view(jsonl.report_dict(r)) for r in reports]
        if not only:
            sys.stdout.write("\n")
        table_mod.render(views, table_mod.wide_console(), sort=table.removeprefix("only:"))


def _credentials(
    user: str | None,
    without_nla: bool,
    targets: list[Target],
    repeat: int,
    all_addresses: bool,
    depth: str,
) -> Credentials | None:
    """--user: one account, one logon on one address (repeated logons can lock an account)."""
    if user is None:
        if without_nla:
            raise UsageError("--logon-without-nla needs --user")
        return None
    from rdprobe.live.credentials import CredentialError, Credentials, parse_user, read_password

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
    from dataclasses import replace

    from rdprobe.api import _options
    from rdprobe.live.check import check_target

    opts = replace(_options(**options), credentials=credentials, logon_without_nla=without_nla)
    (report,) = await check_target(target, opts)
    return report


def interrupted(finished: list[Report], total: int, as_json: bool, verbose: bool) -> int:
    """Ctrl-C: print what finished (as it would have been printed); the exit code, 130."""
    from rdprobe.analysis.severity import ExitCode
    from rdprobe.cli.errors import say_interrupted

    if finished:
        emit(finished, as_json, verbose, table="input" if len(finished) > 1 else None)
    say_interrupted(f"{len(finished)} of {total} target(s) finished (shown above)")
    return int(ExitCode.INTERRUPTED)


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """typer runs no coroutines itself (an async command silently does nothing). The garbage
    collector is on for what runs here (rdprobe.cli.main keeps it off during start-up)."""
    import asyncio
    import gc

    gc.enable()
    return asyncio.run(coro)
