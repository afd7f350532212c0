"""The target deadline (4 x --timeout): steps take min(limit, time left), a stage that ignores it
is stopped just after it, and the reason names the step it ran out in."""

from __future__ import annotations

import asyncio
import socket
import time

from rdprobe.analysis.facts import StageNote
from rdprobe.live import stages as live_stages
from rdprobe.live.check import DEADLINE_GRACE_S, CheckOptions, check_target
from rdprobe.live.target import parse_target
from rdprobe.live.timing import Deadline, close_writer, drain_within
from rig.ports import free_port, loopback_address


def test_limit_is_cut_by_the_deadline_and_remembers_the_step():
    deadline = Deadline(0.5)
    assert deadline.limit(0.1, "a: short") == 0.1 and deadline.ran_out_in is None
    assert 0.4 < deadline.limit(5.0, "b: long") <= 0.5
    assert deadline.ran_out_in == "b: long"
    assert "0.5 s ran out during b: long" in deadline.reason()


async def test_a_stage_that_ignores_the_deadline_is_stopped_just_after_it(monkeypatch):
    async def hang(ctx) -> None:  # stands in for the UDP stage, which runs without RDP
        await asyncio.sleep(ctx.deadline.limit(3600, "udp: sleeping") + 3600)

    monkeypatch.setattr(live_stages, "STAGES", (("udp", hang, False),))
    address = loopback_address()
    opts = CheckOptions.with_timeout(0.25, udp=True)
    start = time.monotonic()
    (report,) = await check_target(parse_target(f"{address}:{free_port(address)}"), opts)
    wall = time.monotonic() - start
    note = report.observation.udp
    assert isinstance(note, StageNote) and "ran out during udp: sleeping" in note.skipped
    assert report.observation.config.deadline in note.skipped
    assert wall / (1.0 + DEADLINE_GRACE_S) < 1.2, wall


async def test_a_drain_waits_only_for_bytes_the_kernel_has_not_taken():
    """drain_within: at once when every byte went to the kernel (even with no time left), and a
    TimeoutError within its limit when a peer that never reads leaves bytes in asyncio's buffer."""
    stop = asyncio.Event()

    async def never_read(reader, writer):
        await stop.wait()
        writer.transport.abort()

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x" * 100)
        await drain_within(writer, 0.0)  # the kernel took it: no wait, no timer to run out
        start = time.monotonic()
        try:
            for _ in range(200):  # until the socket buffers are full (a few MB on loopback)
                writer.write(b"x" * (1 << 20))
                await drain_within(writer, 0.3)
        except TimeoutError:
            pass
        else:
            raise AssertionError("200 MB drained to a peer that never reads")
        assert writer.transport.get_write_buffer_size() > 0
        assert time.monotonic() - start < 5
        writer.transport.abort()
    finally:
        stop.set()
        server.close()
        await server.wait_closed()


async def test_a_close_waits_only_when_the_peer_has_a_say(monkeypatch):
    """close_writer: a plain connection whose bytes the kernel took closes at the loop's next
    turn, with no timer (even with no time left); one whose bytes a peer never reads waits
    within its limit, then the transport is aborted."""
    stop = asyncio.Event()

    async def never_read(reader, writer):
        await stop.wait()
        writer.transport.abort()

    timers: list[float | None] = []
    real_timeout = asyncio.timeout

    def counted(delay):
        timers.append(delay)
        return real_timeout(delay)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    port = server.sockets[0].getsockname()[1]
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"x" * 100)
        await asyncio.sleep(0.05)
        monkeypatch.setattr(asyncio, "timeout", counted)
        await close_writer(writer, 0.0)
        assert writer.transport.is_closing() and timers == []
        monkeypatch.setattr(asyncio, "timeout", real_timeout)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # small buffers at both ends (the peer's set on the listener, which the accepted socket
        # inherits; loopback's autotuning grows a receive buffer to 32 MB otherwise): of 4 MB
        # the kernel takes a few KB, and asyncio holds the rest for as long as the peer reads not
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        writer.write(b"x" * (4 << 20))
        await asyncio.sleep(0.05)
        assert writer.transport.get_write_buffer_size() > (3 << 20)
        monkeypatch.setattr(asyncio, "timeout", counted)
        start = time.monotonic()
        await close_writer(writer, 0.3)
        assert timers == [0.3] and 0.25 < time.monotonic() - start < 3
        assert writer.transport.is_closing()
    finally:
        stop.set()
        server.close()
        await server.wait_closed()
