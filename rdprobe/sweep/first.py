"""A sweep target's first connect, on the event loop: most targets of a sweep refuse or do not
answer, and that connect is then the whole observation.

The same first connect ``rdprobe check`` makes before asyncio loads (rdprobe.live.first_connect:
its FirstConnect, error texts and verdict), made with ``loop.sock_connect`` on a non-blocking
socket instead of a blocking one, so thousands run at once. A refused, unreachable or timed-out
connect is judged at once (``judge_first``: the observation the prober makes of it, one attempt),
without the prober's per-target setup; a connect that succeeds hands its socket to the prober
(``probe_address(first_connect=...)``) as the primary request's connection, so a server sees
the connections it saw before. On Windows the socket gets the winsock settings that make a
refusal immediate (rdprobe.live.winsock), as there.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from datetime import UTC, datetime

from rdprobe.analysis.classify import Report
from rdprobe.analysis.observations import TcpOutcome
from rdprobe.live.check import CheckOptions, probe_address
from rdprobe.live.first_connect import (
    FirstConnect,
    connect_error,
    judge_first,
    tcp_outcome,
    timeout_error,
)
from rdprobe.live.target import Target
from rdprobe.live.timing import now_ms


async def connect_first(address: str, port: int, limit: float) -> FirstConnect | None:
    """One connect of at most ``limit`` seconds to an IP literal; None when no socket can be
    made for it (the prober then connects, and reports why, as before)."""
    if "%" in address:  # a zone id: left to the prober's resolver
        return None
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    except OSError:
        return None
    at, started = datetime.now(UTC), time.monotonic()
    try:
        if sys.platform == "win32":  # no SYN retries after a RST: a refusal is at once
            from rdprobe.live import winsock

            winsock.tune(sock, limit)
        sock.setblocking(False)
        async with asyncio.timeout(limit):
            await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except TimeoutError:
        sock.close()
        return FirstConnect(TcpOutcome.TIMEOUT, timeout_error(limit), None, None, started, at)
    except OSError as exc:
        sock.close()
        return FirstConnect(
            tcp_outcome(exc), connect_error(exc), now_ms(started), None, started, at
        )
    except BaseException:  # cancelled (Ctrl-C): no socket left behind
        sock.close()
        raise
    return FirstConnect(TcpOutcome.CONNECTED, None, now_ms(started), sock, started, at)


def _now() -> datetime:
    return datetime.now(UTC)


async def probe_literal(target: Target, opts: CheckOptions) -> Report:
    """``probe_address`` of an address literal, its first connect made here: judged at once
    when that connect settles it, else handed to the prober."""
    if opts.udp or opts.repeat > 1:  # more than the first connect to observe of any port
        return await probe_address(target, target.host, opts)
    first = await connect_first(target.host, target.port, opts.timeouts.connect)
    try:
        if first is not None and first.settles(opts.retries, opts.depth):
            return judge_first(
                target,
                first,
                timeout_s=opts.timeouts.connect,
                cookie=opts.cookie,
                depth=opts.depth,
                clock=_now,
            )
        return await probe_address(target, target.host, opts, first_connect=first)
    finally:
        if first is not None and first.sock is not None:  # not taken (cancelled): closed
            first.sock.close()
