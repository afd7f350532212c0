"""`rdprobe emulate`: serve an emulated RDP listener (bytes from real Windows servers)."""

from __future__ import annotations

from typing import Annotated

import typer

from rdprobe.cli.errors import UsageError, excerpt


def emulate(
    profile: Annotated[
        str, typer.Option(metavar="NAME", help="Emulator profile name (see --list).")
    ] = "win10-nla",
    listen: Annotated[
        str, typer.Option(metavar="ADDR:PORT", help="Address and port to listen on.")
    ] = "127.0.0.1:3389",
    list_profiles: Annotated[bool, typer.Option("--list", help="List the profiles.")] = False,
) -> None:
    """Serve an emulated RDP listener whose bytes come from real Windows servers."""
    from rdprobe.cli.app import run_async
    from rdprobe.emulate import profiles, server

    if list_profiles:
        for name, p in profiles.PROFILES.items():
            typer.echo(f"{name:24} {p.description}")
        return
    if profile not in profiles.PROFILES:
        raise UsageError(f"unknown profile {excerpt(profile)}; try --list")
    try:
        server.parse_listen(listen)
    except ValueError as exc:
        raise UsageError(f"--listen {excerpt(listen)}: {exc}") from None
    try:
        run_async(server.run_emulator(profile, listen))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the address is taken, or not one of this machine's
        why = exc.strerror or str(exc)
        raise UsageError(f"--listen {excerpt(listen)}: cannot listen there: {why}") from None
