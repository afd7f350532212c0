"""Explicit timeouts and one absolute deadline per target.

Per-read timeouts never fire on a server that drips a byte at a time, so every await on the network
takes the smaller of its phase limit and what is left of the target's deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rdprobe.defaults import DEFAULT_TIMEOUT_S

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:  # asyncio loads with the prober, not with the first connect (live/first_connect)
    import asyncio


@dataclass(frozen=True)
class Timeouts:
    """The limits of one target's steps, in seconds (``--timeout`` sets them all)."""

    connect: float = DEFAULT_TIMEOUT_S  #: TCP handshake
    read: float = DEFAULT_TIMEOUT_S  #: one reply (X.224 confirm, TLS flight, MCS response)
    total: float = 4 * DEFAULT_TIMEOUT_S  #: everything for one target:port

    @classmethod
    def from_timeout(cls, timeout: float) -> Timeouts:
        return cls(connect=timeout, read=timeout, total=4 * timeout)


class Deadline:
    """An absolute point in monotonic time, and which step it ran out in.

    Every network step asks ``limit(its limit, "stage: step")`` and gets the smaller of its own
    limit and what is left. The step whose limit was cut short (the last one, if several) is
    where the deadline ran out: that stage says so, and the stages after it are skipped with
    that reason.
    """

    def __init__(self, seconds: float, start: float | None = None) -> None:
        """``seconds`` from ``start`` (a time.monotonic() value; now when None)."""
        self.seconds = seconds
        self.at = (time.monotonic() if start is None else start) + seconds
        self.ran_out_in: str | None = None
        """The named step the deadline cut short ("tls: TLS handshake")."""

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def limit(self, phase: float, step: str | None = None) -> float:
        """The time a phase may take: its own limit, cut by the deadline."""
        left = self.remaining()
        if step is not None and 0 < left < phase:  # the last step cut short while time was left
            self.ran_out_in = step
        return max(0.0, min(phase, left))

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def reason(self) -> str:
        """Why a later step gets no time: the deadline and the step it ran out in."""
        where = f" during {self.ran_out_in}" if self.ran_out_in else ""
        return f"the target's deadline of {self.seconds:g} s ran out{where}"


def now_ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)


CLOSE_LIMIT_S = 1.0
"""The longest a close waits for the peer (a TLS close_notify exchange); then the socket is
dropped."""


def _sent(writer: asyncio.StreamWriter) -> bool:
    """Has the kernel taken every byte written, on a plain TCP transport still open? Then a
    drain returns at once, and a close ends at the loop's next turn (the transport calls the
    stream's connection_lost itself, waiting on nothing from the peer): neither needs a timer,
    which saves one per write and seven of nine per close of a depth-full target (README,
    Benchmarks). A TLS transport's close waits for the peer's close_notify; after a failed
    start_tls the plain transport is already closing and belongs to the TLS protocol, so the
    stream never hears that it closed: both keep their timers."""
    transport = writer.transport
    return (
        transport.get_write_buffer_size() == 0
        and not transport.is_closing()
        and transport.get_extra_info("sslcontext") is None
    )


async def drain_within(writer: asyncio.StreamWriter, timeout: float) -> None:
    """``writer.drain()`` within *timeout* (TimeoutError after it); at once when nothing waits
    to be sent."""
    import asyncio

    if _sent(writer):
        return
    async with asyncio.timeout(max(0.0, timeout)):  # no task per drain, unlike wait_for
        await writer.drain()


async def close_writer(writer: asyncio.StreamWriter, timeout: float = CLOSE_LIMIT_S) -> None:
    """Close a stream without ever raising or hanging: wait at most *timeout* (callers pass
    ``deadline.limit(CLOSE_LIMIT_S)``), then abort the transport so nothing lingers."""
    import asyncio

    try:
        if _sent(writer):  # the transport closes by itself at the loop's next turn: no timer
            writer.close()
            await writer.wait_closed()
            return
        writer.close()
        async with asyncio.timeout(max(0.0, timeout)):  # no task per close, unlike wait_for
            await writer.wait_closed()
    except Exception:  # ssl and socket errors from a hostile peer's close must not escape
        try:
            writer.transport.abort()
        except Exception:  # already gone
            pass
