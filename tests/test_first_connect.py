"""The first connect before asyncio (rdprobe.live.first_connect): a port that refuses, times out or
is unreachable is judged from it alone, like the prober judges it; a port that accepts hands its
connection to the prober, which then opens no more connections than it did without it."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from rdprobe.analysis.observations import TcpOutcome
from rdprobe.emulate.server import serve
from rdprobe.live import first_connect, negotiate, winsock
from rdprobe.live.check import CheckOptions, probe_address
from rdprobe.live.first_connect import FirstConnect, connect_first, judge_first, tcp_outcome
from rdprobe.live.matrix import PRIMARY, TCP_ONLY
from rdprobe.live.target import Target
from rdprobe.live.timing import Deadline
from rig import require_binaries, require_root
from rig.netns import netns
from rig.ports import loopback_address


def _clock() -> datetime:
    return datetime.now(UTC)


async def test_refused_port_is_judged_like_the_prober_judges_it():
    host = loopback_address()
    target = Target(host, 3389, True)
    before = datetime.now(UTC)
    first = connect_first(host, 3389, 2.0)
    after = datetime.now(UTC)
    assert first is not None
    assert first.outcome is TcpOutcome.REFUSED and first.sock is None
    assert first.connect_ms is not None and 0 <= first.connect_ms < 2000
    assert "refused" in (first.error or "").lower()
    assert first.settles(0, "full") and first.settles(3, "x224")  # no retry after a refusal
    mine = judge_first(target, first, timeout_s=2.0, cookie="rdprobe", depth="full", clock=_clock)
    prober = await probe_address(target, host, CheckOptions.with_timeout(2.0))
    assert mine.outcome == prober.outcome == "refused"
    assert [f.id for f in mine.findings] == [f.id for f in prober.findings] == ["tcp.refused"]
    (a,), (b,) = mine.observation.attempts, prober.observation.attempts
    assert (a.label, a.requested, a.tcp) == (b.label, b.requested, b.tcp)
    assert a.error == b.error == f"[Errno {errno.ECONNREFUSED}] {os.strerror(errno.ECONNREFUSED)}"
    assert (a.label, a.requested) == (PRIMARY.label, PRIMARY.requested)
    assert mine.observation.config == prober.observation.config  # timeout and cookie
    assert before <= mine.observation.started <= after  # when the probe began: at the connect


def test_depth_tcp_closes_an_accepted_connection_at_once():
    import socket

    with socket.create_server((loopback_address(), 0)) as listener:
        host, port = listener.getsockname()[:2]
        first = connect_first(host, port, 2.0)
        assert first is not None and first.outcome is TcpOutcome.CONNECTED
        assert first.settles(0, "tcp") and not first.settles(0, "x224")
        report = judge_first(
            Target(host, port, True), first, timeout_s=2.0, cookie=None, depth="tcp", clock=_clock
        )
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2.0)
            assert conn.recv(1) == b""  # closed by us, nothing sent
    assert first.sock is None
    assert report.outcome == "open"
    (attempt,) = report.observation.attempts
    assert (attempt.label, attempt.tcp) == (TCP_ONLY.label, TcpOutcome.CONNECTED)


@pytest.mark.parametrize("depth", ["x224", "full"])
async def test_accepted_connection_is_the_primary_requests_own(depth):
    """Handed over, the first connect's socket carries the primary request: the server counts
    as many connections as without it, and the report is the same."""
    import asyncio

    opts = CheckOptions.with_timeout(2.0, depth=depth)
    async with await serve("win2012-negotiate", "127.0.0.1", 0) as server:
        target = Target("127.0.0.1", server.port, True)
        plain = await probe_address(target, "127.0.0.1", opts)
        without = server.connections
        first = await asyncio.to_thread(connect_first, "127.0.0.1", server.port, 2.0)
        assert first is not None and first.outcome is TcpOutcome.CONNECTED
        assert not first.settles(0, depth)
        handed = await probe_address(target, "127.0.0.1", opts, first_connect=first)
        assert server.connections - without == without
    assert first.sock is None  # taken over by the prober
    assert handed.outcome == plain.outcome == "rdp"
    assert handed.setting is not None and plain.setting is not None
    assert handed.setting.summary == plain.setting.summary
    assert sorted(f.id for f in handed.findings) == sorted(f.id for f in plain.findings)
    assert handed.observation.attempts[0].connect_ms == first.connect_ms
    assert handed.observation.started == first.at  # the probe began with the first connect
    assert [a.label for a in handed.observation.attempts] == [
        a.label for a in plain.observation.attempts
    ]


async def test_a_timeout_with_retries_left_goes_on_to_the_prober():
    """The first try's timeout counts as one of the --retries + 1 tries."""
    started = time.monotonic()
    made = FirstConnect(TcpOutcome.TIMEOUT, "no answer within 1.0 s", None, None, started)
    assert made.settles(0, "full") and not made.settles(1, "full")
    host = loopback_address()  # refuses: the second try ends at once
    outcome, error, ms, streams = await negotiate.connect(
        host, 3389, CheckOptions().timeouts, Deadline(20.0), retries=1, first_connect=made
    )
    assert outcome is TcpOutcome.REFUSED and streams is None and ms is not None
    # no retry left: the first try's timeout is the answer, nothing more is tried
    outcome, error, ms, _ = await negotiate.connect(
        host, 3389, CheckOptions().timeouts, Deadline(20.0), retries=0, first_connect=made
    )
    assert (outcome, error, ms) == (TcpOutcome.TIMEOUT, "no answer within 1.0 s", None)


def test_deadline_counts_from_the_first_connect():
    deadline = Deadline(10.0, start=time.monotonic() - 4.0)
    assert 5.5 < deadline.remaining() <= 6.0
    assert "10 s" in deadline.reason()


INSIDE = (
    "import sys, time\n"
    "from rdprobe.live.first_connect import connect_first\n"
    "start = time.monotonic()\n"
    "f = connect_first('127.0.0.1', int(sys.argv[1]), 0.5)\n"
    "print(f.outcome, f.connect_ms is None, f.settles(0, 'full'), f.settles(1, 'full'),\n"
    "      round(time.monotonic() - start, 2), 'asyncio' in sys.modules)\n"
)


def test_filtered_and_unreachable_in_a_namespace():
    """Each way a connect fails, from a firewall in a namespace: the first connect tells it as the
    asyncio prober does (several targets go to the prober), without loading asyncio."""
    require_root()
    require_binaries("ip", "nft")
    ports = {3389: "drop", 3390: "host-unreachable", 3391: "admin-prohibited", 3392: "reset",
             3393: "nothing listens"}  # fmt: skip
    with netns("rdprobe-first") as ns:
        ns.drop_tcp(3389)
        ns.reject_tcp(3390, "host-unreachable")
        ns.reject_tcp(3391, "admin-prohibited")
        ns.reset_tcp(3392)

        def inside(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ns.exec_argv([sys.executable, *argv]), capture_output=True, text=True, timeout=60
            )

        lines = {port: inside("-c", INSIDE, str(port)).stdout.split() for port in ports}
        targets = [f"127.0.0.1:{port}" for port in ports]
        prober = inside("-m", "rdprobe", "check", *targets, "--timeout", "0.5", "--json")
        # one target: the quick path; a timeout with a retry left goes on to the prober
        started = time.monotonic()
        retried = inside("-m", "rdprobe", "check", "127.0.0.1:3389", "--timeout", "0.5",
                         "--retries", "1", "--json")  # fmt: skip
        retried_s = time.monotonic() - started
        unreachable = inside("-m", "rdprobe", "check", "127.0.0.1:3390")
    by_port = {row["port"]: row["outcome"] for row in map(json.loads, prober.stdout.splitlines())}
    assert [lines[p][0] for p in ports] == [by_port[p] for p in ports]
    assert by_port[3389] == "timeout" and by_port[3392] == by_port[3393] == "refused"
    assert by_port[3390] == "host_unreachable"
    # outcome, no connect ms, settles without retries, settles with one, elapsed, asyncio loaded
    assert lines[3389][1:4] == ["True", "True", "False"]
    assert 0.45 <= float(lines[3389][4]) < 5
    for port in (3390, 3391, 3392, 3393):
        assert lines[port][1:4] == ["False", "True", "True"], (ports[port], lines[port])
    assert all(line[5] == "False" for line in lines.values())
    row = json.loads(retried.stdout)
    assert row["outcome"] == "timeout" and [f["id"] for f in row["findings"]] == ["tcp.timeout"]
    assert retried_s >= 1.0  # the prober made the second try
    assert unreachable.returncode == 1, unreachable.stderr
    assert "127.0.0.1:3390  host unreachable" in unreachable.stdout


class WinError(OSError):
    """An OSError as Windows raises it (POSIX has no winerror attribute)."""

    def __init__(self, winerror: int, text: str) -> None:
        super().__init__(None, text)
        self.winerror = winerror


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (WinError(10061, "WSAECONNREFUSED"), TcpOutcome.REFUSED),
        (WinError(10060, "WSAETIMEDOUT"), TcpOutcome.TIMEOUT),
        (WinError(10065, "WSAEHOSTUNREACH"), TcpOutcome.HOST_UNREACHABLE),
        (WinError(10051, "WSAENETUNREACH"), TcpOutcome.NET_UNREACHABLE),
        (WinError(10013, "WSAEACCES"), TcpOutcome.ERROR),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), TcpOutcome.REFUSED),
        (OSError(errno.EHOSTUNREACH, "no route"), TcpOutcome.HOST_UNREACHABLE),
        (OSError(errno.EHOSTDOWN, "host down"), TcpOutcome.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "network unreachable"), TcpOutcome.NET_UNREACHABLE),
        (OSError(errno.EACCES, "denied"), TcpOutcome.ADMIN_PROHIBITED),
        (OSError(errno.ETIMEDOUT, "timed out"), TcpOutcome.TIMEOUT),
        (OSError(errno.EMFILE, "too many open files"), TcpOutcome.ERROR),
    ],
)
def test_connect_errors_map_alike_on_windows_and_posix(exc, outcome):
    assert tcp_outcome(exc) is outcome
    assert negotiate.tcp_outcome is tcp_outcome  # the prober uses the same table


def test_windows_socket_is_tuned_before_its_connect(monkeypatch):
    """On Windows the first connect's socket gets the no-SYN-retries settings before connect()
    (a RST is then a refusal at once, rdprobe.live.winsock)."""
    seen: list[tuple[float, bool]] = []

    def tune(sock, limit, *, ioctl=None):
        try:
            sock.getpeername()
            connected = True
        except OSError:
            connected = False
        seen.append((limit, connected))
        return []

    monkeypatch.setattr(first_connect.sys, "platform", "win32")
    monkeypatch.setattr(winsock, "tune", tune)
    first = connect_first(loopback_address(), 3389, 1.5)
    assert seen == [(1.5, False)]
    assert first is not None and first.outcome is TcpOutcome.REFUSED


def test_no_socket_for_what_is_no_ip_literal():
    assert connect_first("rdp.example.com", 3389, 1.0) is None
    assert connect_first("bad\u00e9", 3389, 1.0) is None


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 3389)"),  # asyncio's
    ],
)
def test_a_connect_error_reads_the_same_from_either_path(exc):
    words = os.strerror(errno.ECONNREFUSED)
    assert first_connect.connect_error(exc) == f"[Errno {errno.ECONNREFUSED}] {words}"


def test_a_code_without_c_library_words_keeps_its_own_text():
    exc = OSError(first_connect.WSAECONNREFUSED, "No connection could be made")
    text = first_connect.connect_error(exc)
    assert text == (
        "[Errno 10061] No connection could be made"
        if os.strerror(first_connect.WSAECONNREFUSED).startswith("Unknown error")
        else f"[Errno 10061] {os.strerror(first_connect.WSAECONNREFUSED)}"
    )
