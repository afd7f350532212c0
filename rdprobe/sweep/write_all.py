"""Bytes written whole to a binary stream, whatever signal arrives while its pipe is full.

CPython's BufferedWriter drops the rest of a write larger than its buffer when the write(2)
under it returns short because a signal handler ran, the pipe being full (measured on Python
3.11: 66 of 300 KB reached the reader, with nothing raised). Ctrl-C runs such a handler
(asyncio's, or a worker's own), and a sweep writes its rows in batches of many kilobytes to
pipes: to the parent from each worker, and to whatever reads ``--json``. os.write returns how
much went and retries an interrupted call itself (PEP 475).
"""

from __future__ import annotations

import os
from typing import BinaryIO


def write_all(out: BinaryIO, data: bytes) -> None:
    """``data`` to ``out`` to the last byte, after what ``out`` buffered already; a stream with
    no descriptor (an io.BytesIO) takes it with write()."""
    out.flush()
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        out.write(data)
        out.flush()
        return
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
