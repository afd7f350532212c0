"""The library interface behind ``import rdprobe``: check, sweep and read captures.

Each call builds the same options the command line builds and returns the same
:class:`~rdprobe.analysis.classify.Report` objects the renderers print, so a script sees exactly
what ``rdprobe check --json`` shows (``rdprobe.as_dict(report)`` is that JSON row).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from rdprobe.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_COOKIE,
    DEFAULT_DEPTH,
    DEFAULT_PER_HOST,
    DEFAULT_REPEAT,
    DEFAULT_RETRIES,
    DEFAULT_SWEEP_CONCURRENCY,
    DEFAULT_SWEEP_PER_HOST,
    DEFAULT_TIMEOUT_S,
)

if TYPE_CHECKING:
    from rdprobe.analysis.classify import Report
    from rdprobe.live.check import CheckOptions
    from rdprobe.live.target import Target

Depth = Literal["tcp", "x224", "full"]
_DEPTHS = ("tcp", "x224", "full")

__all__ = ["Depth", "analyze_pcap", "as_dict", "check", "check_many", "check_sync", "sweep"]


def _options(
    *,
    timeout: float,
    depth: str,
    cookie: str | None,
    per_host: int = DEFAULT_PER_HOST,
    repeat: int = DEFAULT_REPEAT,
    retries: int = DEFAULT_RETRIES,
    udp: bool = False,
    ca_file: str | os.PathLike[str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
    all_addresses: bool = False,
) -> CheckOptions:
    from rdprobe.live.check import CheckOptions
    from rdprobe.live.timing import Timeouts

    if depth not in _DEPTHS:
        raise ValueError(f"depth must be tcp, x224 or full, not {depth!r:.40}")
    if not 0.05 <= timeout <= 600:
        raise ValueError("timeout must be 0.05 to 600 seconds")
    if cookie is not None and (any(c in cookie for c in "\r\n") or not cookie.isascii()):
        raise ValueError("cookie must be ASCII without line breaks")
    return CheckOptions(
        timeouts=Timeouts.from_timeout(timeout),
        retries=retries,
        cookie=cookie,
        per_host=per_host,
        repeat=repeat,
        all_addresses=all_addresses,
        depth=depth,
        udp=udp,
        ca_file=os.fspath(ca_file) if ca_file is not None else None,
        resolve={k.lower().rstrip("."): list(v) for k, v in (resolve or {}).items()},
    )


def _target(target: str | Target) -> Target:
    from rdprobe.live.target import Target, parse_target

    return target if isinstance(target, Target) else parse_target(target)


async def check(
    target: str | Target,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    depth: Depth = DEFAULT_DEPTH,
    cookie: str | None = DEFAULT_COOKIE,
    per_host: int = DEFAULT_PER_HOST,
    repeat: int = DEFAULT_REPEAT,
    retries: int = DEFAULT_RETRIES,
    udp: bool = False,
    ca_file: str | os.PathLike[str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
) -> Report:
    """Diagnose one RDP listener, like ``rdprobe check TARGET``.

    ``target`` is ``host``, ``host:port``, ``[v6addr]:port`` or an IP literal (port 3389 when
    none is given); a name is probed on its first address. ``resolve`` maps a name to the
    addresses to probe under it (the certificate is still checked against the name). Raises
    ``rdprobe.TargetError`` (a ValueError) for a target that cannot be parsed and ValueError for
    a bad option; network failures are never raised, they are the report's findings.
    """
    from rdprobe.live.check import check_target

    opts = _options(
        timeout=timeout,
        depth=depth,
        cookie=cookie,
        per_host=per_host,
        repeat=repeat,
        retries=retries,
        udp=udp,
        ca_file=ca_file,
        resolve=resolve,
    )
    (report, *_) = await check_target(_target(target), opts)
    return report


async def check_many(
    targets: Iterable[str | Target],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    all_addresses: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    depth: Depth = DEFAULT_DEPTH,
    cookie: str | None = DEFAULT_COOKIE,
    per_host: int = DEFAULT_PER_HOST,
    repeat: int = DEFAULT_REPEAT,
    retries: int = DEFAULT_RETRIES,
    udp: bool = False,
    ca_file: str | os.PathLike[str] | None = None,
    resolve: Mapping[str, Sequence[str]] | None = None,
    on_report: Callable[[Report], None] | None = None,
) -> list[Report]:
    """:func:`check` of several targets, ``concurrency`` at once, reports in the order given
    (with ``all_addresses``, one per address of each name). What ``rdprobe check`` runs.
    ``on_report`` gets each report as soon as it is finished (what an interruption keeps)."""
    from rdprobe.live.check import check_target

    parsed = [_target(t) for t in targets]
    opts = _options(
        timeout=timeout,
        depth=depth,
        cookie=cookie,
        per_host=per_host,
        repeat=repeat,
        retries=retries,
        udp=udp,
        ca_file=ca_file,
        resolve=resolve,
        all_addresses=all_addresses,
    )
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(t: Target) -> list[Report]:
        async with limit:
            reports = await check_target(t, opts)
        if on_report is not None:
            for r in reports:
                on_report(r)
        return reports

    nested = await asyncio.gather(*(one(t) for t in parsed))
    return [r for group in nested for r in group]


def check_sync(target: str | Target, **options: Any) -> Report:
    """:func:`check` for code without an event loop (it runs one with ``asyncio.run``)."""
    return asyncio.run(check(target, **options))


async def sweep(
    targets: Iterable[str] | str,
    *,
    ports: str | Sequence[int] = "3389",
    exclude: Iterable[str] = (),
    depth: Depth = DEFAULT_DEPTH,
    timeout: float = DEFAULT_TIMEOUT_S,
    cookie: str | None = DEFAULT_COOKIE,
    concurrency: int = DEFAULT_SWEEP_CONCURRENCY,
    rate: float | None = None,
    per_host: int = DEFAULT_SWEEP_PER_HOST,
    retries: int = DEFAULT_RETRIES,
) -> AsyncIterator[Report]:
    """Sweep networks like ``rdprobe sweep``: yields one Report per target:port as each finishes
    (not in input order). ``targets`` are CIDR blocks, ``A-B`` ranges, octet patterns
    (``10.0.0-3.1-254``), names or ``host:port``; ``exclude`` takes the same forms. To stop
    early, iterate inside ``contextlib.aclosing(rdprobe.sweep(...))``: leaving it stops the
    sweep and closes its connections at once. Bad input raises ``rdprobe.TargetError`` before
    anything is probed.
    """
    from rdprobe.live.target import parse_ports
    from rdprobe.sweep.runner import SweepOptions, run_sweep
    from rdprobe.sweep.targets import TargetSet, load_specs

    items = [targets] if isinstance(targets, str) else list(targets)
    port_list = parse_ports(ports) if isinstance(ports, str) else list(ports)
    target_set = TargetSet(load_specs(items, [], ()), port_list, load_specs(list(exclude), [], ()))
    if depth == "full":
        import rdprobe.live.stages  # noqa: F401  (the later stages register on import)
    opts = SweepOptions(
        check=_options(
            timeout=timeout, depth=depth, cookie=cookie, per_host=min(max(per_host, 1), 64)
        ),
        concurrency=max(1, concurrency),
        rate=rate,
        per_host=max(1, per_host),
        retries=retries,
    )
    done: asyncio.Queue[Report | None] = asyncio.Queue()
    task = asyncio.create_task(
        run_sweep(iter(target_set), opts, lambda _row: None, on_report=done.put_nowait)
    )
    task.add_done_callback(lambda _t: done.put_nowait(None))
    try:
        while (report := await done.get()) is not None:
            yield report
        await task  # a failure of the sweep itself surfaces here
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def analyze_pcap(
    path: str | os.PathLike[str],
    *,
    host: str | None = None,
    port: int | None = None,
    warnings: list[str] | None = None,
    now: datetime | None = None,
) -> Iterator[Report]:
    """The Report of every RDP connection in a pcap / pcapng file (gzip too), like
    ``rdprobe pcap FILE``, each judged at the capture's time (or ``now``). ``host`` / ``port``
    keep only connections with that address / port. Damage in the file appends a line to
    ``warnings`` and ends the reading; a file that is no capture raises ``rdprobe.CaptureError``.
    """
    from rdprobe.capture.analyze import analyze, judge

    connections, found = analyze(path, host=host, port=port)
    if warnings is not None:
        warnings.extend(found)
    for conn in connections:
        yield judge(conn, now)


def as_dict(report: Report) -> dict[str, Any]:
    """The report as the JSON row ``--json`` writes (schema in docs/json-schema.md)."""
    from rdprobe.render.jsonl import report_dict

    return report_dict(report)
