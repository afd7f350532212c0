"""`rdprobe sweep`: its options, declared for typer (help, ranges), and a call to run_sweep.

What the command does lives in rdprobe.cli.sweep_run, without typer: a command line of these
options alone reaches it from rdprobe.cli.main without loading typer (rdprobe.cli.sweep_args), and
tests/test_cli_quick.py holds the two signatures and the ranges equal (rdprobe.cli.values).
"""

from __future__ import annotations

from typing import Annotated

import typer

from rdprobe.cli.options import CookieOpt, TimeoutOpt, bounded
from rdprobe.defaults import (
    DEFAULT_COOKIE,
    DEFAULT_DEPTH,
    DEFAULT_RETRIES,
    DEFAULT_SHARD,
    DEFAULT_SWEEP_CONCURRENCY,
    DEFAULT_SWEEP_PER_HOST,
    DEFAULT_SWEEP_PORTS,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WORKERS,
)


def sweep(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="TARGET",
            help="CIDR, A-B range, 10.0.0-3.1-254, host, host:port, [v6addr]:port; - reads stdin",
        ),
    ] = None,
    input_list: Annotated[
        list[str] | None,
        typer.Option("-iL", "--input-list", metavar="FILE", help="File of targets (- = stdin)."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(metavar="TARGET", help="Skip these (same forms).")
    ] = None,
    exclude_file: Annotated[
        list[str] | None, typer.Option(metavar="FILE", help="File of excludes.")
    ] = None,
    ports: Annotated[
        str, typer.Option(metavar="PORTS", help="Ports of every target: 3389,3388-3399.")
    ] = DEFAULT_SWEEP_PORTS,
    depth: Annotated[
        str,
        typer.Option(
            metavar="DEPTH",
            help="tcp, x224, full (TLS, NLA, MCS too) or session (full, and the walk to the "
            "logon screen: it opens a logon-screen session on every server).",
        ),
    ] = DEFAULT_DEPTH,
    concurrency: Annotated[
        int,
        bounded("concurrency", "Targets (connections) in flight at once."),
    ] = DEFAULT_SWEEP_CONCURRENCY,
    rate: Annotated[
        float | None,
        bounded("rate", "At most N new connections per second, spread evenly."),
    ] = None,
    per_host: Annotated[
        int,
        bounded("per_host", "Targets in flight at once on one host."),
    ] = DEFAULT_SWEEP_PER_HOST,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    retries: Annotated[
        int,
        bounded("retries", "Retries of timed-out targets."),
    ] = DEFAULT_RETRIES,
    cookie: CookieOpt = DEFAULT_COOKIE,
    output: Annotated[
        str | None, typer.Option("-o", "--output", metavar="FILE", help="Write JSON Lines to FILE.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines to stdout.")] = False,
    csv_file: Annotated[
        str | None, typer.Option("--csv", metavar="FILE", help="Write CSV to FILE.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            metavar="FILE", help="Skip target:ports already in FILE (JSON Lines of rdprobe sweep)."
        ),
    ] = None,
    shard: Annotated[
        str,
        typer.Option(
            metavar="K/N",
            help="Probe only share K of N (1-based); auto: K and N from the array job "
            "(Kubernetes, Slurm, AWS Batch, GNU parallel).",
        ),
    ] = DEFAULT_SHARD,
    shards: Annotated[
        int | None,
        bounded("shards", "N for --shard auto where the runner does not say it."),
    ] = None,
    workers: Annotated[
        int,
        bounded(
            "workers", "Processes to sweep with; 0: one per CPU core for sweeps of 4096+ targets."
        ),
    ] = DEFAULT_WORKERS,
    table: Annotated[
        bool,
        typer.Option(
            "--table",
            help="Show the compact table at the end (the default on a terminal without -o, --csv"
            " or --json).",
        ),
    ] = False,
) -> None:
    """Sweep networks for RDP listeners: one result row per target:port, streamed."""
    from rdprobe.cli.sweep_run import run_sweep

    code = run_sweep(
        targets=targets,
        input_list=input_list,
        exclude=exclude,
        exclude_file=exclude_file,
        ports=ports,
        depth=depth,
        concurrency=concurrency,
        rate=rate,
        per_host=per_host,
        timeout=timeout,
        retries=retries,
        cookie=cookie,
        output=output,
        as_json=as_json,
        csv_file=csv_file,
        resume=resume,
        shard=shard,
        shards=shards,
        workers=workers,
        table=table,
    )
    raise typer.Exit(code)
