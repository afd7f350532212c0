"""The sweep scheduler: many targets through ``check_target``, one result row each, streamed.

A fixed pool of workers pulls targets from a lazy iterator, so memory does not grow with the
target count. Limits, in the order a probe meets them: the rate (new probes per second, paced one
at a time: no bursts, no credit saved while idle), the per-host limit, and the open-connection
limit — which shrinks when the process runs out of file descriptors (EMFILE / ENFILE / Windows
WSAEMFILE) and grows back slowly, the target being retried instead of failed. Timeouts are retried
``retries`` times; nothing else is. Every target yields exactly one row, also when its probe
raises; on cancellation the rows finished so far have all been handed to the sink.
"""

from __future__ import annotations

import asyncio
import errno
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rdprobe.analysis.classify import Report, classify
from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.defaults import DEFAULT_SWEEP_CONCURRENCY as DEFAULT_CONCURRENCY
from rdprobe.defaults import DEFAULT_SWEEP_PER_HOST
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.protocol.errors import internal_error
from rdprobe.render.jsonl import line_and_row, report_dict
from rdprobe.sweep.first import probe_literal
from rdprobe.sweep.stats import SweepStats

__all__ = ["SweepOptions", "SweepStats", "run_sweep"]

#: Times one target is put back after running out of file descriptors before it gets an error row.
FD_RETRY_LIMIT = 200
FD_BACKOFF_MAX_S = 1.0
#: A shrink of the connection limit after fd exhaustion holds for at least this long.
FD_SHRINK_HOLD_S = 0.2
_WSAEMFILE = 10024
#: Windows' port exhaustion: no buffer space (no ephemeral port or socket memory left) and the
#: address in use (every local port to this destination taken). (Linux's EADDRNOTAVAIL is left
#: out: it is also the answer for an address no route can use, which no waiting cures.)
_WSAENOBUFS, _WSAEADDRINUSE = 10055, 10048
#: Errors of this process running out of descriptors or ports: the sweep slows down and puts the
#: target back instead of giving it an error row.
FD_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, _WSAEMFILE, _WSAENOBUFS, _WSAEADDRINUSE})
_ERRNO_TEXT = re.compile(r"\[(?:Errno|WinError) (\d+)\]")

#: asyncio reads TLS through a 256 KiB buffer per connection (asyncio.sslproto.SSLProtocol
#: .max_size, zeroed at each start_tls): at depth full a sweep holds about five TLS connections
#: per target at once, 560 MB for 301 listeners (measured). A TLS record is at most 2^14 bytes
#: plus 2,048 of expansion and a 5-byte header (RFC 5246 6.2.3), so this still reads any record
#: in one call.
TLS_READ_BUFFER = 2**14 + 2048 + 5


def small_tls_buffers() -> None:
    """Make asyncio's per-connection TLS read buffer record-sized for the rest of the process
    (a sweep process; only the size of each read changes)."""
    import asyncio.sslproto

    if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > TLS_READ_BUFFER:
        asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


Probe = Callable[[Target, CheckOptions], Awaitable[list[Report]]]
RowSink = Callable[[Any], None]  #: gets a row's dict, or with ``lines`` its JSON line


@dataclass(frozen=True)
class SweepOptions:
    check: CheckOptions = field(default_factory=lambda: CheckOptions(depth="x224"))
    concurrency: int = DEFAULT_CONCURRENCY  #: targets in flight (open connections at x224)
    rate: float | None = None  #: new probes per second, None = unpaced
    per_host: int = DEFAULT_SWEEP_PER_HOST  #: targets in flight per host
    retries: int = 0  #: extra tries for a target whose outcome is a TCP timeout
    fd_retry_limit: int = FD_RETRY_LIMIT


class Pacer:
    """Token bucket of depth one: starts are spaced 1/rate apart, idle time earns nothing."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        at = max(now, self._next)
        self._next = at + self.interval
        delay = at - now
        if delay > 0.0005:  # below the loop's timer resolution a sleep only adds overhead
            await asyncio.sleep(delay)


class Gate:
    """A semaphore whose limit can move; a released slot is handed straight to a waiter."""

    def __init__(self, limit: int) -> None:
        self.max = self.limit = max(1, limit)
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._calm = 0
        self._shrunk_at = -1e9

    @property
    def idle(self) -> bool:
        return self.active == 0 and not self._waiters

    async def acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over as we were cancelled: give it back
            else:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            fut = self._waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)

    def shrink(self) -> None:
        """Out of file descriptors: run about three quarters of what is open now."""
        now = time.monotonic()
        if now - self._shrunk_at < FD_SHRINK_HOLD_S:
            return
        self._shrunk_at = now
        self.limit = max(1, min(self.limit, self.active + 1) * 3 // 4)
        self._calm = 0

    def grow(self) -> None:
        """A probe went through: after a quarter-limit of them, allow a few more."""
        if self.limit >= self.max:
            return
        self._calm += 1
        if self._calm >= max(4, self.limit // 4):
            self._calm = 0
            self.limit = min(self.max, self.limit + max(1, self.limit // 16))
            self._wake()


class HostLimits:
    """The per-host limit: a count per host with probes in flight, and a Gate only for a host
    at its limit (most sweeps probe each host once: no Gate per target). Dropped when idle."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._active: dict[str, int] = {}
        self._gates: dict[str, Gate] = {}

    async def acquire(self, host: str) -> None:
        gate = self._gates.get(host)
        if gate is None:
            n = self._active.get(host, 0)
            if n < self.per_host:
                self._active[host] = n + 1
                return
            gate = self._gates[host] = Gate(self.per_host)  # full: waiters queue here
            gate.active = n
            del self._active[host]
        await gate.acquire()

    def release(self, host: str) -> None:
        gate = self._gates.get(host)
        if gate is not None:
            gate.release()
            if gate.idle:
                del self._gates[host]
            return
        n = self._active[host] - 1
        if n:
            self._active[host] = n
        else:
            del self._active[host]

    def __len__(self) -> int:
        return len(self._active) + len(self._gates)


async def probe_target(target: Target, opts: CheckOptions) -> list[Report]:
    """``check_target``, without its resolver and gather steps for an address literal, whose
    first connect is made by rdprobe.sweep.first (a refusal is judged at once)."""
    if target.is_literal:
        return [await probe_literal(target, opts)]
    return await check_target(target, opts)


def fd_exhausted(report: Report) -> bool:
    """Did the probe fail because this process had no file descriptor left?"""
    texts = [a.error for a in report.observation.attempts if a.tcp is TcpOutcome.ERROR]
    texts.append(report.observation.dns_error)
    for text in texts:
        if not text:
            continue
        if "Too many open files" in text:
            return True
        m = _ERRNO_TEXT.search(text)
        if m and int(m.group(1)) in FD_ERRNOS:
            return True
    return False


def error_report(target: Target, exc: BaseException) -> Report:
    """The row of a target whose probe raised: outcome ``error``, the exception as evidence."""
    now = datetime.now(UTC)
    obs = TargetObservation(
        target.host, target.port, target.host if target.is_literal else None, now
    )
    text = internal_error(exc)
    obs.attempts.append(Attempt("internal", None, TcpOutcome.ERROR, text))
    return classify(obs, now)


async def run_sweep(
    targets: Iterable[Target],
    opts: SweepOptions,
    sink: RowSink,
    *,
    stats: SweepStats | None = None,
    probe: Probe = probe_target,
    on_report: Callable[[Report], None] | None = None,
    lines: bool = False,
) -> SweepStats:
    """Probe every target, calling ``sink(row)`` with its JSON row as soon as it is finished.

    ``stats`` (pass your own to read it after a cancellation) is updated as rows come;
    ``on_report`` (the library's ``rdprobe.sweep``) gets each Report before its row is made.
    With ``lines``, ``sink`` gets (JSON line, row to count) instead (``line_and_row``: a worker
    hands its rows on and counts them).
    """
    stats = stats if stats is not None else SweepStats()
    if opts.check.depth == "full":
        small_tls_buffers()
    it = iter(targets)
    pacer = Pacer(opts.rate)
    gate = Gate(opts.concurrency)
    hosts = HostLimits(max(1, opts.per_host))

    async def probe_once(target: Target) -> Report:
        await pacer.wait()
        await hosts.acquire(target.host)
        try:
            await gate.acquire()
            try:
                reports = await probe(target, opts.check)
                if not reports:
                    raise RuntimeError("the probe returned no report")
                return reports[0]
            except OSError as exc:
                if exc.errno in FD_ERRNOS or getattr(exc, "winerror", None) in FD_ERRNOS:
                    return error_report(target, OSError(exc.errno, "Too many open files"))
                stats.probe_errors += 1
                return error_report(target, exc)
            except Exception as exc:  # a probe bug must still give the target its row
                stats.probe_errors += 1
                return error_report(target, exc)
            finally:
                gate.release()
        finally:
            hosts.release(target.host)

    async def one(target: Target) -> Report:
        timeouts = fd_tries = 0
        while True:
            report = await probe_once(target)
            if fd_exhausted(report) and fd_tries < opts.fd_retry_limit:
                fd_tries += 1
                stats.fd_backoffs += 1
                gate.shrink()
                await asyncio.sleep(min(FD_BACKOFF_MAX_S, 0.01 * 2 ** min(fd_tries, 7)))
                continue
            if report.outcome == TcpOutcome.TIMEOUT and timeouts < opts.retries:
                timeouts += 1
                stats.timeout_retries += 1
                continue
            gate.grow()
            return report

    async def worker() -> None:
        for target in it:
            report = await one(target)
            if on_report is not None:
                on_report(report)
            sink(line_and_row(report) if lines else report_dict(report))
            stats.rows += 1
            stats.by_outcome[report.outcome] += 1

    workers = [asyncio.create_task(worker()) for _ in range(max(1, opts.concurrency))]
    try:
        await asyncio.gather(*workers)
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            stats.interrupted = True
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        stats.connection_limit = gate.limit
    return stats
