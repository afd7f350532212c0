"""The live stream readers are incremental: linear in bytes, the same answer fed whole or dripped.

Over real loopback sockets: a server sends a TLS flight cut into one-byte records (the issue's
4,000-record case) or a TSRequest, and the time for 4x the bytes is compared with 1x (a ratio,
never an absolute time).
"""

from __future__ import annotations

import asyncio
import time

from fuzzkit import linear, seeds

from rdprobe.live import nla
from rdprobe.live import tls as live_tls
from rdprobe.live.timing import close_writer


async def _serve(payload: bytes, chunk: int):
    async def handle(reader, writer):
        try:
            await reader.read(4096)  # the client's hello, if any
        except OSError:
            pass
        try:
            for i in range(0, len(payload), chunk):
                writer.write(payload[i : i + chunk])
                await writer.drain()
                await asyncio.sleep(0)  # its own segment: the reader sees many small reads
            await reader.read(1)
        except OSError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _legacy_hello_time(payload: bytes) -> tuple[float, live_tls.FallbackResult]:
    server = await _serve(payload, 60)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter()
        result = await live_tls.legacy_hello(reader, writer, timeout=30, limit=1 << 20)
        elapsed = time.perf_counter() - start
        await close_writer(writer)
    finally:
        server.close()
    return elapsed, result


async def test_legacy_hello_reads_a_flight_of_tiny_records_in_linear_time():
    small, large = linear.tiny_record_flight(4000), linear.tiny_record_flight(16000)
    await _legacy_hello_time(small)  # warm up
    t1 = min([(await _legacy_hello_time(small))[0] for _ in range(3)])
    t4, result = min([await _legacy_hello_time(large) for _ in range(3)], key=lambda r: r[0])
    assert result.server_hello_done and result.error is None and result.chain_der
    assert t4 / t1 < linear.RATIO_LIMIT, f"4x the records took {t4 / t1:.1f}x the time"


async def test_legacy_hello_on_a_real_flight_dripped_equals_whole():
    flight = seeds.pdus("tls_server_hello_certificate_done_record")[0]
    answers = []
    for chunk in (len(flight), 1):
        server = await _serve(flight, chunk)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers.append(await live_tls.legacy_hello(reader, writer, timeout=10))
        await close_writer(writer)
        server.close()
    assert answers[0].server_hello_done and answers[0] == answers[1]


async def _tsrequest_time(payload: bytes, chunk: int) -> tuple[float, bytes]:
    server = await _serve(payload, chunk)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x")
    start = time.perf_counter()
    got = await nla.read_tsrequest(reader, 30)
    elapsed = time.perf_counter() - start
    await close_writer(writer)
    server.close()
    return elapsed, got


async def test_read_tsrequest_dripped_equals_whole_and_is_linear():
    real = seeds.pdus("credssp_tsrequest_ntlm_challenge")[0]
    assert (await _tsrequest_time(real, 1))[1] == real
    small, large = linear.tsrequest_tokens(1000), linear.tsrequest_tokens(4000)
    assert len(large) < 64 * 1024
    t1 = min([(await _tsrequest_time(small, 7))[0] for _ in range(5)])
    t4 = min([(await _tsrequest_time(large, 7))[0] for _ in range(5)])
    assert t4 / t1 < linear.RATIO_LIMIT, f"4x the bytes took {t4 / t1:.1f}x the time"
