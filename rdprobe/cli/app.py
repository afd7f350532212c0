"""The typer app: every command registered, ``--version``, and the coroutine runner.

Typer's rich help is off (``rich_markup_mode=None``): it read ``[v6addr]`` in help texts as markup
and dropped it, showed a ``<bool>`` type after every flag, and loading rich for it cost start-up
time. Commands import what they need inside their bodies, so building the app (for ``--help`` or
to parse a command line) loads neither asyncio, ssl, rich nor cryptography.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rdprobe._version import __version__
from rdprobe.cli import check, demo, emulate, find, findings, merge, pcap, report, sweep
from rdprobe.cli.check_run import run_async as run_async  # the commands' coroutine runner

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Tell from the wire alone why a Remote Desktop connection fails.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rdprobe {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Tell from the wire alone why a Remote Desktop connection fails."""


app.command()(check.check)
app.command()(find.find)
app.command()(sweep.sweep)
app.command()(merge.merge)
app.command()(pcap.pcap)
app.command()(report.report)
app.command()(emulate.emulate)
app.command()(demo.demo)
app.command()(findings.findings)
