"""The Windows branches, tested here by simulating what Windows gives where that is honest (a
socket that records its options, Windows error codes, os.name) — none of this ran on Windows."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.emulate.server import serve
from rdprobe.live import winsock
from rdprobe.live.udp import port_unreachable
from rdprobe.sweep import workers
from rdprobe.sweep.runner import fd_exhausted
from rig.ports import loopback_address


class RecordingSocket:
    def __init__(self, refuse: set[int] = frozenset()) -> None:
        self.options: list[tuple[int, int, int]] = []
        self.refuse = refuse

    def setsockopt(self, level: int, name: int, value: int) -> None:
        if name in self.refuse:
            raise OSError(10042, "WSAENOPROTOOPT")
        self.options.append((level, name, value))

    def fileno(self) -> int:
        return 1234


def test_windows_socket_gets_no_syn_retries_and_a_connect_cap():
    calls: list[tuple[int, int, bytes]] = []
    sock = RecordingSocket()
    applied = winsock.tune(
        sock, 2.2, ioctl=lambda fd, code, data: calls.append((fd, code, data)) or True
    )
    assert applied == ["TCP_MAXRT", "SIO_TCP_INITIAL_RTO"]
    assert sock.options == [(socket.IPPROTO_TCP, 5, 3)]  # TCP_MAXRT in whole seconds, rounded up
    (fd, code, data) = calls[0]
    assert fd == 1234 and code == 0x98000011  # _WSAIOW(IOC_VENDOR, 17)
    rtt, max_syn = struct.unpack("<HBx", data)
    assert (rtt, max_syn) == (
        0xFFFF,
        0xFE,
    )  # RTT unspecified, TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS


def test_windows_refusing_the_options_is_not_an_error():
    def ioctl(fd: int, code: int, data: bytes) -> bool:
        raise OSError(10045, "WSAEOPNOTSUPP")

    assert winsock.tune(RecordingSocket(refuse={5}), 5, ioctl=ioctl) == []


def test_no_windows_socket_elsewhere():
    assert winsock.WINDOWS is (sys.platform == "win32")
    if not winsock.WINDOWS:
        assert winsock.connect_socket("127.0.0.1", 3389, 2.0) is None


class WinError(OSError):
    """An OSError as Windows raises it (POSIX has no winerror attribute)."""

    def __init__(self, winerror: int, text: str) -> None:
        super().__init__(None, text)
        self.winerror = winerror


@pytest.mark.parametrize("code", [10054, 1234, 10061])
def test_closed_udp_port_on_windows_is_closed_not_silent(code):
    assert port_unreachable(WinError(code, "port unreachable")) is True
    assert port_unreachable(WinError(10060, "timed out")) is False
    assert port_unreachable(ConnectionRefusedError(111, "refused")) is True


@pytest.mark.parametrize(
    "text",
    [
        "[WinError 10055] An operation on a socket could not be performed because the system "
        "lacked sufficient buffer space or because a queue was full",
        "[WinError 10048] Only one usage of each socket address is normally permitted",
        "[Errno 24] Too many open files",
    ],
)
def test_port_exhaustion_backs_off_like_emfile(text):
    now = datetime.now(UTC)
    obs = TargetObservation("127.0.0.1", 3389, "127.0.0.1", now)
    obs.attempts.append(Attempt("SSL|HYBRID|HYBRID_EX", 11, TcpOutcome.ERROR, text, 0.1))
    assert fd_exhausted(classify(obs, now)) is True
    other = TargetObservation("127.0.0.1", 3389, "127.0.0.1", now)
    other.attempts.append(
        Attempt("SSL|HYBRID|HYBRID_EX", 11, TcpOutcome.ERROR, "[WinError 10013] denied", 0.1)
    )
    assert fd_exhausted(classify(other, now)) is False


def _spec(host: str, ports: list[int], timeout: float) -> workers.WorkerSpec:
    """What `rdprobe sweep HOST --ports ... --depth x224 --timeout T` hands its one worker."""
    from rdprobe.sweep.targets import parse_spec

    return workers.WorkerSpec(
        (parse_spec(host),), tuple(ports), (), (1, 1), 0, 1, "x224", timeout, "rdprobe", 64, 8
    )


async def test_worker_stops_on_its_stdin_line_with_rows_written():
    """What the parent does on every system (Windows has no SIGINT for one process): the stop
    line on stdin. The worker finishes its rows in flight and exits 130; nothing is terminated,
    and the worker runs in a process group of its own (Ctrl-C in a terminal reaches the parent
    only)."""
    host = loopback_address()
    async with await serve("silent", host, 0) as silent:
        spec = _spec(host, [*range(1, 31), silent.port], 20)
        (proc,) = await workers.start_children([spec])
        assert proc.stdin is not None
        if os.name != "nt":
            assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
        rows = []
        while len(rows) < 30:  # the 30 refused ports; the silent one stays in flight
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            if not line.startswith(workers.TALLY_MARK):  # each batch's count line
                rows.append(json.loads(line))
        workers._interrupt(proc)
        rest = await asyncio.wait_for(proc.stdout.read(), 30)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 130
    rows += [json.loads(x) for x in rest.decode().splitlines() if not x.startswith("#")]
    assert sorted(r["port"] for r in rows if r["outcome"] == "refused") == list(range(1, 31))


def test_worker_started_by_hand_without_a_parent_stops_at_stdin_eof():
    spec = _spec("127.0.0.1", [1], 1)
    done = subprocess.run(
        workers.worker_argv(), input=spec.encode(), capture_output=True, timeout=60
    )
    assert done.returncode in (0, 130), done.stderr
    assert b"Traceback" not in done.stderr
    rows = [json.loads(x) for x in done.stdout.splitlines() if not x.startswith(b"#")]
    assert len(rows) <= 1 and all(r["target"] == "127.0.0.1:1" for r in rows)


def test_worker_without_a_spec_says_so_in_one_line():
    done = subprocess.run(
        workers.worker_argv(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no spec on stdin" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
