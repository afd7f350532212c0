"""Start-up time of the rdprobe command: `--version`, `--help`, `check --help`.

Each command line runs REPEAT times in a fresh interpreter; the script prints the best and the
median wall time, and their ratio to a bare interpreter start (`python -c pass`) measured in the
same run, so a loaded machine shifts both alike. The issue-12 target is < 0.3 s for `--version`
and `--help`. ``--pythonpath DIR`` measures another checkout (e.g. an older commit exported with
``git archive``) with the same interpreter.

    .venv/bin/python scripts/bench_startup.py [--repeat 15] [--pythonpath DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (["--version"], ["--help"], ["check", "--help"], ["sweep", "--help"])


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()  # cwd "/": `-m` would import the checkout in the cwd
    subprocess.run(
        argv,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=60,
        cwd=os.sep,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--pythonpath", help="measure the rdprobe in this directory")
    args = parser.parse_args()
    env = dict(os.environ, COLUMNS="100")
    if args.pythonpath:
        env["PYTHONPATH"] = os.path.abspath(args.pythonpath)
    where = subprocess.run(
        [sys.executable, "-c", "import rdprobe, os; print(os.path.dirname(rdprobe.__file__))"],
        env=env, capture_output=True, text=True, check=True, cwd=os.sep,
    ).stdout.strip()  # fmt: skip
    print(f"rdprobe from {where}; {args.repeat} runs each")
    runs = {"python -c pass": [sys.executable, "-c", "pass"]}
    runs |= {"rdprobe " + " ".join(c): [sys.executable, "-m", "rdprobe", *c] for c in COMMANDS}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, args.repeat)):
        for name, argv in runs.items():  # interleaved: load changes hit every command alike
            times[name].append(wall(argv, env))
    peer = min(times["python -c pass"])
    for name, ts in times.items():
        best, median = min(ts), statistics.median(ts)
        print(
            f"{name:24} best {best:6.3f} s  median {median:6.3f} s  ratio to bare python {best / peer:5.1f}x"
        )


if __name__ == "__main__":
    main()
