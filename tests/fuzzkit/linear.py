"""Linear time as a ratio: the time for 4x the input over the time for 1x, never an absolute."""

from __future__ import annotations

import gc
import struct
import time
from collections.abc import Callable

SCALE = 4
#: linear gives ~4; quadratic ~16. The bound leaves room for a loaded 2-core machine.
RATIO_LIMIT = 8.0


def best_time(fn: Callable[[bytes], object], data: bytes, tries: int = 5) -> float:
    best = float("inf")
    enabled = gc.isenabled()
    gc.disable()  # a collection landing in one run is noise, not the parser's cost
    try:
        for _ in range(tries):
            start = time.perf_counter()
            try:
                fn(data)
            except ValueError:  # ProtocolError on a crafted input is fine: the time counts
                pass
            best = min(best, time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return best


def ratio(fn: Callable[[bytes], object], make: Callable[[int], bytes], n: int) -> float:
    """time(make(4n)) / time(make(n)), each the best of a few runs."""
    small, large = make(n), make(SCALE * n)
    best_time(fn, small, 1)  # warm caches and imports
    return best_time(fn, large) / max(best_time(fn, small), 1e-9)


def tiny_record_flight(records: int) -> bytes:
    """A ServerHello + Certificate flight cut into one-byte TLS records (the issue's case)."""
    hello = bytes.fromhex("0301") + bytes(32) + b"\x00" + bytes.fromhex("000500")
    cert = b"\x30\x82" + struct.pack("!H", records) + bytes(records)
    cert_list = struct.pack("!I", len(cert))[1:] + cert
    body = struct.pack("!I", len(cert_list))[1:] + cert_list
    stream = (
        b"\x02" + struct.pack("!I", len(hello))[1:] + hello
        + b"\x0b" + struct.pack("!I", len(body))[1:] + body
        + b"\x0e\x00\x00\x00"
    )  # fmt: skip
    return b"".join(b"\x16\x03\x01\x00\x01" + stream[i : i + 1] for i in range(len(stream)))


def av_pairs(count: int) -> bytes:
    """NTLM AV_PAIRs (MS-NLMP 2.2.2.1): *count* 4-byte DNS names, then MsvAvEOL."""
    item = struct.pack("<HH", 3, 4) + b"a\x00b\x00"
    return item * count + b"\x00\x00\x00\x00"


def der_children(count: int) -> bytes:
    """A DER body of *count* small INTEGERs."""
    return b"\x02\x01\x01" * count


def gcc_blocks(count: int) -> bytes:
    """User-data blocks (MS-RDPBCGR 2.2.1.4): *count* 8-byte SC_NET blocks."""
    return (struct.pack("<HH", 0x0C03, 8) + struct.pack("<HH", 0x03EB, 0)) * count


def tsrequest_tokens(count: int) -> bytes:
    from rdprobe.protocol.credssp import TSRequest

    return TSRequest(6, tuple(b"NTLMSSP\x00" for _ in range(count))).build()
