"""`sweep --workers N`: the same sweep split over N processes, one per CPU core.

One process probes at a few thousand targets per second on loopback, most of it Python work per
target (classification, JSON), so more cores give more speed. The parent (the `sweep` command)
parses and checks every option, then starts N workers (``python -m rdprobe.sweep.worker``) and
hands each its WorkerSpec, the already-parsed values, on stdin: a worker imports only what
probing needs (no typer, rich or option parsing of its own: 0.19 instead of 0.26 s of CPU per
worker, measured), and the parent never imports the prober. Worker K probes share K (every N-th index of the --shard,
`rdprobe.sweep.shard.select`, before --resume), writing JSON Lines rows to a pipe; the parent
relays their rows to the outputs, the summary and the progress bar.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from rdprobe.sweep.write_all import write_all

if TYPE_CHECKING:
    from rdprobe.live.target import Target
    from rdprobe.sweep.items import Spec
    from rdprobe.sweep.resume import ResumeState
    from rdprobe.sweep.runner import SweepOptions
    from rdprobe.sweep.targets import TargetSet

#: The module a worker process runs (``python -m``).
WORKER_MODULE = "rdprobe.sweep.worker"
#: The longest row line read from a child.
LINE_LIMIT = 16 * 1024 * 1024
#: How long stopped children may take to write their finished rows and exit.
STOP_GRACE_S = 10.0
#: How a worker gets a process group of its own (see start_children).
_OWN_GROUP: dict[str, Any] = (
    {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    if os.name == "nt"
    else {"process_group": 0}
)
#: The length prefix of the spec on a worker's stdin (bytes of the pickle that follows).
_SPEC_LEN = struct.Struct(">Q")


def resolve_workers(requested: int) -> int:
    """0 means one per CPU core."""
    return max(1, requested if requested > 0 else (os.cpu_count() or 1))


@dataclass(frozen=True)
class WorkerSpec:
    """What one process sweeps, as the `sweep` command parsed and checked it (its typer
    options stay the one definition; this carries their values, and ``options`` is the one
    place they become SweepOptions). ``index`` is 0-based; rate and concurrency are the whole
    sweep's (each of ``workers`` processes takes its part)."""

    specs: tuple[Spec, ...]
    ports: tuple[int, ...]
    excludes: tuple[Spec, ...]
    shard: tuple[int, int]
    index: int
    workers: int
    depth: str
    timeout: float
    cookie: str | None
    concurrency: int
    per_host: int
    rate: float | None = None
    retries: int = 0
    resume: str | None = None

    def options(self) -> SweepOptions:
        """The prober's options (imported here: the parent of workers never needs them)."""
        from rdprobe.live.check import CheckOptions
        from rdprobe.live.timing import Timeouts
        from rdprobe.sweep.runner import SweepOptions

        return SweepOptions(
            check=CheckOptions(
                timeouts=Timeouts.from_timeout(self.timeout),
                cookie=self.cookie,
                per_host=min(self.per_host, 64),
                depth="full" if self.depth == "session" else self.depth,
                session=self.depth == "session",
            ),
            concurrency=max(1, self.concurrency // self.workers),
            rate=self.rate / self.workers if self.rate else None,
            per_host=self.per_host,
            retries=self.retries,
        )

    def targets(self) -> TargetSet:
        from rdprobe.sweep.targets import TargetSet

        return TargetSet(self.specs, self.ports, self.excludes)

    def encode(self) -> bytes:
        """The bytes the parent writes to the worker's stdin: a length, then the pickle. (The
        pipe is the parent's own, to a child it started: nobody else writes to it.)"""
        data = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return _SPEC_LEN.pack(len(data)) + data


def read_spec(fd: int) -> WorkerSpec | None:
    """The spec at the start of ``fd`` (the worker's stdin), read to its last byte and no
    further (the stop line follows it); None when stdin ends first (no parent sent one)."""

    def exactly(n: int) -> bytes | None:
        parts, left = [], n
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                return None
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)

    head = exactly(_SPEC_LEN.size)
    body = exactly(_SPEC_LEN.unpack(head)[0]) if head is not None else None
    if body is None:
        return None
    spec = pickle.loads(body)
    return spec if isinstance(spec, WorkerSpec) else None


def pending(
    targets: TargetSet,
    shard: tuple[int, int],
    state: ResumeState | None,
    skipped: list[int],
    worker: tuple[int, int] = (0, 1),
) -> Iterator[Target]:
    """A process's targets: the shard, this worker's share of it (split before the resume
    filter, so workers that read the resume file at different moments still agree), minus what
    the resume file holds (counted in ``skipped[0]``)."""
    from rdprobe.sweep.shard import select

    for t in select(targets, *shard, *worker):
        if state is not None and t in state.done:
            skipped[0] += 1
            continue
        yield t


def worker_argv() -> list[str]:
    """The command line of a worker process (its spec comes on stdin)."""
    return [sys.executable, "-m", WORKER_MODULE]


class RelayedRow(dict[str, Any]):
    """A row as a worker wrote it: the parsed row, and its JSON line (``line``), which
    ``rdprobe.render.jsonl.dumps`` writes as it is instead of encoding the row again (the
    parent's sinks read rows, none changes one)."""

    __slots__ = ("line",)

    def __init__(self, parsed: dict[str, Any], line: str) -> None:
        super().__init__(parsed)
        self.line = line


#: How much of a worker's output the parent reads at once (many rows per read).
READ_CHUNK = 1 << 16


def _rows(data: bytes | list[bytes]) -> list[RelayedRow]:
    """The whole rows in ``data`` (complete lines, or a list of lines); a line that does not
    parse is left out (a partial last line of a killed child: its target was not finished), and
    so is a worker's count line (TALLY_MARK)."""
    out = []
    for raw in data.split(b"\n") if isinstance(data, bytes) else data:
        if not raw or raw[:1] == TALLY_MARK:
            continue
        try:
            text = raw.decode("utf-8")
            row = json.loads(text)
        except ValueError:  # UnicodeDecodeError included
            continue
        if isinstance(row, dict):
            out.append(RelayedRow(row, text))
    return out


#: A worker hands its rows to the parent when this many bytes wait, or FLUSH_S after the first
#: of them: one pipe write per row cost the worker and the parent a quarter of their CPU at
#: depth x224 (measured on a refused /16: 20.5 -> 15.2 s for the three processes).
BATCH_BYTES = 1 << 16
FLUSH_S = 0.05


#: The first byte of a worker's count line (no row starts with it: rows are JSON objects).
TALLY_MARK = b"#"


class WorkerRows:
    """A worker's JSON Lines rows to its parent, batched (a context manager: what is left is
    written at the end). A worker killed outright loses at most the batch waiting, rows the
    parent never saw, which --resume probes again.

    Each batch ends with a count line: TALLY_MARK and the JSON of the batch's summary counts
    and verdict (rdprobe.sweep.tally), so the parent need not parse the rows it only writes."""

    def __init__(self, out: TextIO) -> None:
        from rdprobe.sweep.tally import Tally

        self._out = out.buffer
        self._buf = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._tally = Tally()
        self._first = True  #: the first row goes at once (the sweep's first sign of life)

    def __enter__(self) -> WorkerRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def write(self, item: tuple[str, dict[str, Any]]) -> None:
        """One row: its JSON line and a row to count (``rdprobe.render.jsonl.line_and_row``)."""
        line, row = item
        self._buf += line.encode("utf-8")
        self._buf += b"\n"
        self._tally.add(row)
        if len(self._buf) >= BATCH_BYTES or self._first:
            self._first = False
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)
            except RuntimeError:  # no loop: nothing would flush later
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._buf:
            self._buf += self._tally.take()
            data, self._buf = bytes(self._buf), bytearray()
            try:
                write_all(self._out, data)
            except (BrokenPipeError, ValueError):  # the parent is gone: nobody to hand rows to
                pass


class Consumer(Protocol):
    """What the parent does with one worker's output: ``lines`` gets its whole lines (without
    the newline) as they come, many at a time; ``end`` is called when it ends."""

    def lines(self, lines: list[bytes]) -> None: ...

    def end(self) -> None: ...


class RowSink:
    """A Consumer that hands every row to ``sink``, parsed (RelayedRow), count lines left out."""

    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        self.sink = sink

    def lines(self, lines: list[bytes]) -> None:
        for row in _rows(lines):
            self.sink(row)

    def end(self) -> None:
        pass


async def relay(
    procs: list[asyncio.subprocess.Process],
    sink: Callable[[dict[str, Any]], None] | Callable[[], Consumer],
    *,
    consumers: bool = False,
) -> list[int]:
    """Pass what the children print on, in chunks of many lines; their exit codes. ``sink``
    gets every row with its line (RelayedRow); with ``consumers``, ``sink`` makes one Consumer
    per child instead."""

    async def one(proc: asyncio.subprocess.Process) -> int:
        assert proc.stdout is not None
        use: Consumer = sink() if consumers else RowSink(sink)  # type: ignore[arg-type,call-arg,assignment]
        carry = b""
        while True:
            data = await proc.stdout.read(READ_CHUNK)
            if not data:
                break
            cut = data.rfind(b"\n")
            if cut < 0:
                carry += data
                if len(carry) > LINE_LIMIT:  # no row is this long: drop what cannot be one
                    carry = b""
                continue
            whole, carry = carry + data[:cut], data[cut + 1 :]
            use.lines(whole.split(b"\n"))
        if carry:  # a last line without its newline: a row only if it is whole
            if _rows([carry]):
                use.lines([carry])
        use.end()
        return await proc.wait()

    return list(await asyncio.gather(*(one(p) for p in procs)))


async def relay_until_done(
    procs: list[asyncio.subprocess.Process], make: Callable[[], Consumer]
) -> tuple[list[int], bool]:
    """Relay until every child has exited: (exit codes, whether we were interrupted).

    When this task is cancelled (Ctrl-C reaches asyncio.run as a cancellation), the children are
    told to stop (Ctrl-C never reaches them: see start_children), and their finished rows are
    still relayed; a child that does not stop within the grace time is killed, and the targets
    it had not finished are left for --resume.
    """
    task = asyncio.ensure_future(relay(procs, make, consumers=True))
    try:
        return await asyncio.shield(task), False
    except asyncio.CancelledError:
        pass
    for proc in procs:
        _interrupt(proc)
    try:
        return await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_S), True
    except (TimeoutError, asyncio.CancelledError):
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        codes = await asyncio.gather(*(p.wait() for p in procs))
        await asyncio.gather(task, return_exceptions=True)
        return list(codes), True


#: What the parent writes to a worker's stdin to stop it (EOF stops it too).
STOP_LINE = b"stop\n"


def _interrupt(proc: asyncio.subprocess.Process) -> None:
    """Ask a worker to stop: finish the rows in flight, write them, exit 130. Through its stdin,
    the one way on every system: no signal, which would land at an arbitrary point of the
    worker's Python code (its start-up included) and could cost a traceback or the rows in
    flight; terminate() would lose them too."""
    if proc.returncode is not None:
        return
    stdin = proc.stdin
    if stdin is not None and not stdin.is_closing():
        try:
            stdin.write(STOP_LINE)
            stdin.close()
        except (OSError, RuntimeError):
            pass


async def until_stopped(coro: Any, on_stop: Callable[[], None]) -> None:
    """Run a worker's sweep until its parent says stop (a line on stdin, or stdin closed because
    the parent is gone) or a SIGINT sent to the worker itself arrives; then cancel it, which ends
    it as Ctrl-C does, rows finished written. SIGINT only asks (it never raises
    KeyboardInterrupt in the middle of a row), and is ignored outside the sweep: see
    rdprobe.sweep.worker."""
    import threading

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)

    def stop() -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    def watch() -> None:
        try:  # the raw descriptor: a buffered read would hold stdin's lock at interpreter exit
            os.read(sys.stdin.fileno(), 64)
        except (OSError, ValueError):
            pass
        stop()

    threading.Thread(target=watch, name="rdprobe-stop-watch", daemon=True).start()
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop())
    try:
        await task
    except asyncio.CancelledError:
        on_stop()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


async def start_children(specs: list[WorkerSpec]) -> list[asyncio.subprocess.Process]:
    """One worker per spec, each handed its spec on stdin (which stays open: the stop line).

    Each starts in a process group of its own, so Ctrl-C in a terminal (a SIGINT to the whole
    foreground group on POSIX, CTRL_C_EVENT to the console's processes on Windows) reaches the
    parent only, which tells its workers through their stdin: a SIGINT in a worker's start-up
    killed it with a traceback, or with "Fatal Python error" while it imported its site."""
    procs = []
    for spec in specs:
        proc = await asyncio.create_subprocess_exec(
            *worker_argv(),
            stdin=asyncio.subprocess.PIPE,  # the spec, then the stop line: see _interrupt
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
            **_OWN_GROUP,
        )
        assert proc.stdin is not None
        proc.stdin.write(spec.encode())
        procs.append(proc)
    for proc in procs:
        assert proc.stdin is not None
        try:
            await proc.stdin.drain()
        except (ConnectionError, OSError):  # a worker that died at once: its exit code says so
            pass
    return procs
