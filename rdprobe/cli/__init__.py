"""The command line: thin commands that parse options, call the library and render.

``app`` (the typer app) holds the commands, one module each; ``errors`` turns failures into one
line and an exit code; ``options`` holds the options several commands share. ``main`` is the
console script and ``python -m rdprobe``.
"""

from __future__ import annotations

import os
import sys

from rdprobe.defaults import DEFAULT_DEPTH

#: Set to "1" to send every command line through typer (the tests compare both paths).
TYPER_ENV = "RDPROBE_CLI_TYPER"
#: What Click expands in arguments on Windows (user home, variables, wildcards).
WINDOWS_EXPANDED = "~$%*?["


def quick_check(argv: list[str]) -> tuple[list[str], str, bool] | None:
    """(targets, depth, as_json) of ``check TARGET...`` when it has no option but ``--json`` and
    ``--depth DEPTH`` (nothing else to parse: run_check checks the depth as typer's path does),
    or None for any other command line, which typer parses.

    On Windows Click expands ``~``, environment variables and wildcards in arguments, so an
    argument that may hold one goes to typer.
    """
    if len(argv) < 2 or argv[0] != "check" or os.environ.get(TYPER_ENV) == "1":
        return None
    if sys.platform == "win32" and any(c in a for a in argv for c in WINDOWS_EXPANDED):
        return None
    targets: list[str] = []
    depth, as_json = DEFAULT_DEPTH, False
    rest = iter(argv[1:])
    for arg in rest:
        if arg == "--json":
            as_json = True
        elif arg == "--depth" or arg.startswith("--depth="):
            value = arg[len("--depth=") :] if "=" in arg else next(rest, None)
            if value is None or value.startswith("-"):
                return None  # typer says what is wrong
            depth = value
        elif arg.startswith("-"):
            return None
        else:
            targets.append(arg)
    return (targets, depth, as_json) if targets else None


def main() -> None:
    """Console entry point. ``rdprobe --version`` answers before typer is even imported, and so
    does ``rdprobe check TARGET...`` with at most --json and --depth (rdprobe.cli.check_run, with
    the check command's defaults for every other option): going through typer and its pydantic
    adapters cost 0.5-0.7 s of a check's wall time on a slow machine (docs/benchmarks.md). A
    sweep command line of sweep's own options goes straight to rdprobe.cli.sweep_run too
    (rdprobe.cli.sweep_args says which).

    Ctrl-C while the command's modules load is one line and exit 130 too (rdprobe.cli.errors
    guards the command itself): it printed a traceback of typer's imports."""
    try:
        _start(sys.argv[1:])
    except KeyboardInterrupt:
        from rdprobe.cli.errors import interrupted

        interrupted()


def _start(argv: list[str]) -> None:
    if argv == ["--version"]:
        from rdprobe._version import __version__

        sys.stdout.write(f"rdprobe {__version__}\n")
        sys.exit(0)
    quick_args = quick_check(argv)
    if quick_args is not None:
        import gc

        # Start-up makes thousands of long-lived objects (modules, classes) and no garbage, so
        # the collector's passes over them are wasted: off until the probing starts
        # (check_run.run_async turns it back on: asyncio makes cyclic garbage).
        gc.disable()
        from rdprobe.cli.check_run import run_check
        from rdprobe.cli.errors import finish, guard

        def quick() -> int:
            targets, depth, as_json = quick_args
            code = run_check(targets, depth=depth, as_json=as_json)
            if not gc.isenabled():  # judged without the prober: no loop, thread or file open
                finish(code)
            return code

        guard(quick)
    if argv[:1] == ["sweep"]:
        import gc

        # as on check's quick path: the collector is off while the modules load (no garbage
        # there, 20-30 ms of passes); the sweep turns it on, with its thresholds, before probing
        gc.disable()
        from rdprobe.cli.sweep_args import quick_sweep

        sweep_args = quick_sweep(argv)
        if sweep_args is not None:
            from rdprobe.cli.errors import guard
            from rdprobe.cli.sweep_run import run_sweep

            guard(lambda: run_sweep(**sweep_args))
    from rdprobe.cli.app import app
    from rdprobe.cli.errors import run

    run(app)
