"""Reading one whole frame off a stream under one deadline: the one read loop of the live stages.

The frame's length comes from a sans-IO framer (``tpkt.frame_length``,
``credssp.tsrequest_length``): it raises NeedMoreData while the header is incomplete and
ProtocolError when the bytes are not that frame. Each read asks for no more than is missing, so a
dripping server is bounded by the deadline, not by a per-read timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rdprobe.protocol.errors import NeedMoreData

Framer = Callable[[bytes], int]
#: Bytes a framer needs to see to know the length: TPKT's 4, a DER header's at most 6.
HEADER_PEEK = 16


async def read_frame(reader: asyncio.StreamReader, framer: Framer, timeout: float) -> bytes:
    """One whole frame within ``timeout`` overall (the framer bounds its size).

    Raises TimeoutError, asyncio.IncompleteReadError (the peer closed; ``partial`` holds what came)
    or ProtocolError (not this kind of frame).
    """
    if timeout <= 0:
        raise TimeoutError
    buf = bytearray()  # appended in place: a dripped frame costs linear time, not quadratic
    total: int | None = None
    async with asyncio.timeout(timeout):  # one timer for the whole frame, however it comes
        while True:
            try:
                if total is None:  # the header, once whole, fixes the length
                    total = framer(bytes(buf[:HEADER_PEEK]))
            except NeedMoreData as need:
                want = max(need.needed, 1)
            else:
                if len(buf) >= total:
                    return bytes(buf[:total])
                want = total - len(buf)
            chunk = await reader.read(want)
            if not chunk:
                raise asyncio.IncompleteReadError(bytes(buf), None)
            buf += chunk
