"""Run `rdprobe pcap --json FILE` for many files in one process (for scripts/fuzz.py).

Prints one JSON line per file: {"file", "returncode", "stderr", "stdout_lines"}. The command
runs through its real entry point (rdprobe.cli.main with sys.argv set), so exit codes and error
lines are the CLI's own; only the process start-up is shared.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def run_one(path: str) -> dict[str, object]:
    from rdprobe.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    sys.argv = ["rdprobe", "pcap", "--json", path]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if exc.code is not None else 0
        except BaseException as exc:
            import traceback

            err.write("Traceback (escaped the CLI)\n" + traceback.format_exc())
            code = 99
            del exc
    return {
        "file": path,
        "returncode": code if isinstance(code, int) else 1,
        "stderr": err.getvalue(),
        "stdout_lines": len(out.getvalue().splitlines()),
    }


if __name__ == "__main__":
    real = sys.stdout
    for name in sys.argv[1:]:
        real.write(json.dumps(run_one(name)) + "\n")
        real.flush()
