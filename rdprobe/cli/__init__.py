"""The command line: thin commands that parse options, call the library and render.

``app`` (the typer app) holds the commands, one module each; ``errors`` turns failures into one
line and an exit code; ``options`` holds the options several commands share. ``main`` is the
console script and ``python -m rdprobe``.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point. ``rdprobe --version`` answers before typer is even imported."""
    if sys.argv[1:] == ["--version"]:
        from rdprobe._version import __version__

        sys.stdout.write(f"rdprobe {__version__}\n")
        sys.exit(0)
    from rdprobe.cli.app import app
    from rdprobe.cli.errors import run

    run(app)
