"""A `sweep --workers N` worker process: ``python -m rdprobe.sweep.worker``, started by the parent.

It reads its WorkerSpec (rdprobe.sweep.workers) from stdin, probes its share and writes the rows
to stdout in batches; it stops when the parent says so on stdin (or stdin ends: the parent is
gone), its finished rows written, and exits 130. Ctrl-C never reaches it (its own process
group: rdprobe.sweep.workers.start_children); a SIGINT sent to it alone asks it to stop during
the sweep and is ignored before and after, so none lands in the middle of an import or a row.
Nothing of the command line is imported here (typer, rich, the option checks): the parent
checked every option already.
"""

from __future__ import annotations

import sys

#: Exit statuses: rdprobe.analysis.severity.ExitCode.INTERRUPTED and USAGE (not imported for two
#: numbers: this module's start-up is what the parent waits for).
INTERRUPTED = 130
USAGE = 2


def run() -> int:
    """The worker's whole life; its exit status."""
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the sweep runs: see until_stopped

    from rdprobe.sweep.workers import read_spec

    try:
        spec = read_spec(sys.stdin.fileno())
    except (OSError, ValueError, EOFError, ImportError, AttributeError) as exc:
        sys.stderr.write(f"rdprobe sweep worker: unreadable spec on stdin ({exc})\n")
        return USAGE
    if spec is None:
        sys.stderr.write("rdprobe sweep worker: no spec on stdin (started by rdprobe sweep only)\n")
        return USAGE

    import asyncio

    from rdprobe.defaults import SWEEP_GC
    from rdprobe.sweep.resume import load_done
    from rdprobe.sweep.runner import run_sweep
    from rdprobe.sweep.stats import SweepStats
    from rdprobe.sweep.workers import WorkerRows, pending, until_stopped

    state = load_done(spec.resume) if spec.resume is not None else None
    targets = pending(spec.targets(), spec.shard, state, [0], (spec.index, spec.workers))
    stats = SweepStats()
    gc.freeze()  # as the single-process sweep (rdprobe.cli.sweep): modules never become garbage
    gc.set_threshold(*SWEEP_GC)
    with WorkerRows(sys.stdout) as rows:
        asyncio.run(
            until_stopped(
                run_sweep(targets, spec.options(), rows.write, stats=stats, lines=True),
                lambda: setattr(stats, "interrupted", True),
            )
        )
    return INTERRUPTED if stats.interrupted else 0


def main() -> None:
    try:
        code = run()
    except Exception as exc:  # one line, no traceback: the parent reports the exit status
        from rdprobe.protocol.errors import internal_error

        sys.stderr.write(f"rdprobe sweep worker: {internal_error(exc)}\n")
        code = 1
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
