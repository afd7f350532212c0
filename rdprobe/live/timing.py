"""Explicit timeouts and one absolute deadline per target.

Per-read timeouts never fire on a server that drips a byte at a time, so every await on the network
takes the smaller of its phase limit and what is left of the target's deadline.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rdprobe.defaults import DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Timeouts:
    connect: float = DEFAULT_TIMEOUT_S  #: TCP handshake
    read: float = DEFAULT_TIMEOUT_S  #: one reply (X.224 confirm, TLS flight, MCS response)
    total: float = 4 * DEFAULT_TIMEOUT_S  #: everything for one target:port

    @classmethod
    def from_timeout(cls, timeout: float) -> Timeouts:
        return cls(connect=timeout, read=timeout, total=4 * timeout)


class Deadline:
    """An absolute point in monotonic time."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def limit(self, phase: float) -> float:
        """The time a phase may take: its own limit, cut by the deadline."""
        return max(0.0, min(phase, self.remaining()))

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


def now_ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)


async def close_writer(writer: asyncio.StreamWriter, timeout: float = 1.0) -> None:
    """Close a stream without ever raising or hanging."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except Exception:  # ssl and socket errors from a hostile peer's close must not escape
        pass
