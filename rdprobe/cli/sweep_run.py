"""What `rdprobe sweep` does once its options are parsed: targets, outputs, probing, summary.

No typer here, and no rich but for a terminal's progress bar. The typer command
(rdprobe.cli.sweep, where every option is declared with its help) calls :func:`run_sweep` with
what it parsed; a sweep command line of those options alone reaches it from rdprobe.cli.main
through ``quick_sweep`` (rdprobe.cli.sweep_args) without loading typer, its pydantic adapters or rich:
0.19 -> 0.10 s to sweep one refused address, 0.07 s of CPU less in a depth-full sweep of 300
listeners (README, Benchmarks). tests/test_cli_quick.py holds this signature equal to the typer
command's and the two paths' output equal.

Rows go to ``-o FILE.jsonl``, ``--csv`` and / or stdout (``--json``, or when no file is given),
each line flushed as it is finished; the progress bar (only on a terminal) and the summary go to
stderr. Everything heavy (asyncio, the prober) is imported when the command runs.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from typing import IO, TYPE_CHECKING, Any

from rdprobe.analysis.severity import ExitCode
from rdprobe.cli.errors import UsageError, say_interrupted
from rdprobe.cli.values import SWEEP_DEPTHS, check_cookie, check_depth
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
    SWEEP_GC,
)

if TYPE_CHECKING:
    from rich.console import Console

    from rdprobe.sweep.resume import ResumeState
    from rdprobe.sweep.stats import SweepStats
    from rdprobe.sweep.summary import Summary, Verdict
    from rdprobe.sweep.tally import ParentRows
    from rdprobe.sweep.workers import WorkerSpec

INTERRUPTED = int(ExitCode.INTERRUPTED)


def _usage(message: str) -> Exception:
    return UsageError(message)


def check_resume_file(path: str) -> None:
    """--resume takes only a file an earlier sweep wrote: refuse a missing file (nothing to
    resume: start with -o FILE) and one whose first line is not an rdprobe result row (rows
    would be appended to someone else's file)."""
    from rdprobe.render.rows import is_row

    try:
        with open(path, "rb") as fh:
            first = b""
            for line in fh:
                if line.strip():
                    first = line
                    break
    except FileNotFoundError:
        raise _usage(
            f"--resume {path}: no such file (start the sweep with -o FILE, resume it with"
            " --resume FILE)"
        ) from None
    except OSError as exc:
        raise _usage(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first:
        return  # an empty file: a sweep stopped before its first row
    import json

    try:
        row = json.loads(first)
    except ValueError:
        row = None if first.endswith(b"\n") else {"schema": "rdprobe.report/"}  # cut short
    if not is_row(row):
        raise _usage(
            f"--resume {path}: not JSON Lines of rdprobe sweep (its first line is no result row)"
        )


def _same_file(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def run_sweep(
    targets: list[str] | None = None,
    input_list: list[str] | None = None,
    exclude: list[str] | None = None,
    exclude_file: list[str] | None = None,
    ports: str = DEFAULT_SWEEP_PORTS,
    depth: str = DEFAULT_DEPTH,
    concurrency: int = DEFAULT_SWEEP_CONCURRENCY,
    rate: float | None = None,
    per_host: int = DEFAULT_SWEEP_PER_HOST,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
    cookie: str = DEFAULT_COOKIE,
    output: str | None = None,
    as_json: bool = False,
    csv_file: str | None = None,
    resume: str | None = None,
    shard: str = DEFAULT_SHARD,
    shards: int | None = None,
    workers: int = DEFAULT_WORKERS,
    table: bool = False,
) -> int:
    """`rdprobe sweep` with parsed options (ranges already checked by typer or by the quick
    parser, else these defaults): write the rows and the summary, return the exit code. Raises
    UsageError for a bad value."""
    import asyncio

    import rdprobe.render.rows  # loaded now: at the fd limit mid-sweep an import would fail
    from rdprobe.live.target import TargetError, parse_ports
    from rdprobe.render.csv import CsvWriter
    from rdprobe.sweep.resume import load_done, prepare_append
    from rdprobe.sweep.shard import resolve_shard
    from rdprobe.sweep.stats import SweepStats
    from rdprobe.sweep.summary import Summary, Verdict
    from rdprobe.sweep.targets import TargetSet, load_specs
    from rdprobe.sweep.workers import WorkerSpec, pending, resolve_workers

    check_depth(depth, SWEEP_DEPTHS)
    check_cookie(cookie)
    try:
        port_list = parse_ports(ports)
        specs = load_specs(targets or [], input_list or [], sys.stdin)
        excludes = load_specs(exclude or [], exclude_file or [], sys.stdin)
        shard_kn = resolve_shard(shard, shards, os.environ)
        target_set = TargetSet(specs, port_list, excludes)
    except TargetError as exc:
        raise _usage(str(exc)) from None
    if not specs:
        raise _usage("no targets: give CIDR blocks, ranges or hosts, -iL FILE, or - for stdin")
    stdin = _reads_stdin(targets, input_list, exclude_file)
    if workers > 1 and stdin:
        raise _usage("--workers cannot share targets read from stdin: give them in a file (-iL)")
    if workers == 0 and (stdin or target_set.upper_bound() < AUTO_WORKERS_MIN_TARGETS):
        workers = 1
    n_workers = resolve_workers(workers)
    state: ResumeState | None = None
    if resume is not None:
        check_resume_file(resume)
        try:
            state = load_done(resume)
        except OSError as exc:
            raise _usage(f"cannot read {resume}: {exc.strerror or exc}") from None
        if output is None and not as_json and csv_file is None:
            output = resume
    summary = Summary()
    stats = SweepStats()
    skipped = [0]
    with ExitStack() as stack:
        outputs: list[IO[str]] = []  # JSON Lines
        row_sinks: list[Callable[[dict[str, Any]], None]] = []  # what reads rows (CSV, table)
        if output is not None:
            append = state is not None and resume is not None and _same_file(output, resume)
            if append and state is not None:
                prepare_append(output, state)
            outputs.append(stack.enter_context(_open(output, "a" if append else "w")))
        no_file = output is None and csv_file is None
        if no_file and not as_json and sys.stdout.isatty():
            table = True  # a person reads this: the table, not raw JSON rows
        if as_json or (no_file and not table):
            outputs.append(sys.stdout)
        if table:
            import rdprobe.render.table  # noqa: F401  (before the sweep, as rows above)
        shown = TableRows() if table else None
        if shown is not None:
            row_sinks.append(shown.add)
        verdict = Verdict()
        if csv_file is not None:
            grow = state is not None and os.path.exists(csv_file) and os.path.getsize(csv_file) > 0
            cfh = stack.enter_context(_open(csv_file, "a" if grow else "w"))
            row_sinks.append(CsvWriter(cfh, header=not grow).write)
        progress = None
        advance: Callable[[int], None] = _nothing
        if sys.stderr.isatty():
            total = target_set.upper_bound() // shard_kn[1] - (state.rows if state else 0)
            from rich.console import Console  # a terminal's progress bar only

            from rdprobe.cli.progress import sweep_progress

            err = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
            progress = sweep_progress(err, summary.outcome)
            task = progress.add_task("sweep", total=max(total, 1))
            stack.enter_context(progress)

            def advance(n: int) -> None:
                progress.advance(task, n)

        shares = [
            WorkerSpec(
                tuple(specs),
                tuple(port_list),
                tuple(excludes),
                shard_kn,
                index,
                n_workers,
                depth,
                timeout,
                cookie,
                concurrency,
                per_host,
                rate,
                retries,
                resume,
            )
            for index in range(n_workers)
        ]
        if n_workers == 1:  # the prober runs here: loaded before the freeze (and the sweep)
            from rdprobe.sweep.runner import run_sweep

            sinks = [_jsonl_sink(out) for out in outputs] + row_sinks + [verdict.add, summary.add]

            def sink(row: dict[str, Any]) -> None:
                for s in sinks:
                    s(row)
                advance(1)

        gc.freeze()  # the modules loaded so far never become garbage: keep them out of GC passes
        gc.set_threshold(*SWEEP_GC)
        gc.enable()  # off since the start (rdprobe.cli.main) when the command line began with sweep
        try:
            if n_workers > 1:  # the prober is never imported in this process
                relayed = Relayed(outputs, row_sinks, summary, verdict, stats, advance)
                asyncio.run(_sweep_with_workers(relayed, stats, shares))
            else:
                mine = pending(target_set, shard_kn, state, skipped)
                asyncio.run(run_sweep(mine, shares[0].options(), sink, stats=stats))
        except KeyboardInterrupt:
            stats.interrupted = True
        if progress is not None:
            progress.stop()
    if shown is not None:
        from rdprobe.render.table import wide_console

        shown.render(wide_console())
    _print_summary(summary, stats, skipped[0], output or resume)
    return INTERRUPTED if stats.interrupted else int(verdict.code())


#: The most rows the sweep's table shows (the worst ones); the rest are counted.
TABLE_LIMIT = 500
#: Outcomes where nothing listens: counted in the summary, left out of the sweep's table.
NO_LISTENER = frozenset(
    {"refused", "timeout", "host_unreachable", "net_unreachable", "admin_prohibited"}
)


class TableRows:
    """The table's rows: the TABLE_LIMIT worst targets where something listens (memory stays
    bounded; a sweep of a /16 is mostly refused and timed-out ports, which the summary counts)."""

    def __init__(self, limit: int = TABLE_LIMIT) -> None:
        self.limit = limit
        self.heap: list[tuple[int, int, Any]] = []
        self.seen = 0
        self.no_listener = 0

    def add(self, row: dict[str, Any]) -> None:
        import heapq

        from rdprobe.render.rows import view

        if row.get("outcome") in NO_LISTENER:
            self.no_listener += 1
            return
        v = view(row)
        self.seen += 1
        # min-heap on (severity, -arrival): the mildest, latest row is dropped first
        item = (int(v.worst), -self.seen, v)
        if len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
        elif item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def render(self, console: Console) -> None:
        from rdprobe.render import table

        views = [v for _sev, _n, v in self.heap]
        if views:
            table.render(views, console, sort="severity", more=self.seen - len(views))
        quiet = f"{self.no_listener} target:port(s) without a listener (see the summary)"
        console.print(("" if views else "no listener answered; ") + quiet, highlight=False)


def _nothing(_n: int) -> None:
    pass


class Relayed:
    """Where the parent puts its workers' rows: each worker's output to a ParentRows
    (rdprobe.sweep.tally) over the same outputs, counts and progress."""

    def __init__(
        self,
        outputs: list[IO[str]],
        row_sinks: list[Callable[[dict[str, Any]], None]],
        summary: Summary,
        verdict: Verdict,
        stats: SweepStats,
        advance: Callable[[int], None],
    ) -> None:
        self.outputs, self.row_sinks, self.advance = outputs, row_sinks, advance
        self.summary, self.verdict, self.stats = summary, verdict, stats

    def counted(self, rows: int, by_outcome: dict[str, int]) -> None:
        self.stats.rows += rows
        self.stats.by_outcome.update(by_outcome)
        self.advance(rows)

    def consumer(self) -> ParentRows:
        from rdprobe.sweep.tally import ParentRows

        return ParentRows(self.outputs, self.row_sinks, self.summary, self.verdict, self.counted)


async def _sweep_with_workers(relayed: Relayed, stats: SweepStats, specs: list[WorkerSpec]) -> None:
    """Every share in a child process; this one relays their rows (measured: a parent that also
    probes becomes the bottleneck). Ctrl-C: the children finish their rows and stop, and every
    row they finished is relayed before this returns."""
    from rdprobe.sweep.workers import relay_until_done, start_children

    procs = await start_children(specs)
    codes, interrupted = await relay_until_done(procs, relayed.consumer)
    if interrupted or any(code == INTERRUPTED for code in codes):
        stats.interrupted = True
        return  # a child killed after the grace time is part of the interruption
    failed = [code for code in codes if code not in (0, INTERRUPTED)]
    if failed:
        raise RuntimeError(
            f"{len(failed)} sweep worker(s) failed (exit {failed[0]}); rerun with --resume"
        )


#: Below this many target:ports, starting worker processes costs more than it saves.
AUTO_WORKERS_MIN_TARGETS = 4096


def _reads_stdin(*lists: list[str] | None) -> bool:
    return any(item == "-" for items in lists if items for item in items)


def _open(path: str, mode: str) -> AbstractContextManager[IO[str]]:
    """Open an output file; ``-`` is stdout (left open)."""
    if path == "-":
        return nullcontext(sys.stdout)
    try:
        return open(path, mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise _usage(f"cannot open {path}: {exc.strerror or exc}") from None


def _jsonl_sink(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    from rdprobe.render import jsonl

    def write(row: dict[str, Any]) -> None:
        out.write(jsonl.dumps(row) + "\n")
        out.flush()

    return write


def _print_summary(
    summary: Summary, stats: SweepStats, skipped: int, resume_file: str | None
) -> None:
    elapsed = max(stats.elapsed, 1e-6)
    head = f"rdprobe sweep: {stats.rows} target:ports in {elapsed:.1f} s ({stats.rows / elapsed:,.0f}/s)"
    if skipped:
        head += f", {skipped} skipped (already in the resume file)"
    if stats.fd_backoffs:
        head += (
            f", {stats.fd_backoffs} slow-downs at the file-descriptor limit "
            f"(ended at {stats.connection_limit} connections)"
        )
    if stats.timeout_retries:
        head += f", {stats.timeout_retries} timeout retries"
    summary.render(sys.stderr, head)
    if stats.interrupted:
        hint = (
            f"finished rows are written: continue with --resume {resume_file}"
            if resume_file
            else "to continue an interrupted sweep later, run it with -o FILE, then --resume FILE"
        )
        say_interrupted(hint)
