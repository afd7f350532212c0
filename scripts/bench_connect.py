#!/usr/bin/env python3
"""Benchmark one matrix row's connection against bare asyncio floors (not a test).

What a Connection Request and its Confirm cost the client in CPU, per connection, on loopback:
rdprobe's own path (rdprobe.live.negotiate.attempt: the connect, the CR, the reply read and
judged, the close, each under its limit) against three bare clients that only connect, send the
same CR, read the first bytes and close — asyncio streams (what rdprobe uses), an
asyncio.Protocol, and the loop's socket methods (loop.sock_connect/sock_sendall/sock_recv).
The bare clients are the floor a leaner prober core could reach on this machine: if they cost
about what streams cost, replacing the streams buys nothing (docs/benchmarks.md).

The listeners are emulator listeners (win2012-tls-nla by default) on 127.2.0.0/16 addresses in a
child process; where the machine has two cores or more the child runs on one and this process on
another, so that each side's CPU is its own. The methods run in turns, one round each per turn;
each round opens every listener's connections at once. Printed: the median CPU per connection
of each method, and rdprobe's against the fastest floor.
Linux only (sched_setaffinity, loopback /8). Usage: python3 scripts/bench_connect.py
[--listeners N] [--per-listener K] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_sweep import EMULATOR, PORT  # noqa: E402  (the listeners' child process, its port)

from rdprobe.live.matrix import PRIMARY  # noqa: E402
from rdprobe.live.negotiate import attempt  # noqa: E402
from rdprobe.live.timing import Deadline, Timeouts  # noqa: E402
from rdprobe.protocol import x224  # noqa: E402

TIMEOUT_S = 3.0
CR = x224.build_request(cookie=None, requested=PRIMARY.requested)


async def by_streams(host: str) -> bytes:
    reader, writer = await asyncio.open_connection(host, PORT)
    try:
        writer.write(CR)
        return await reader.read(1024)
    finally:
        writer.close()
        await writer.wait_closed()


class _Reply(asyncio.Protocol):
    """Collects the first bytes the server sends."""

    def __init__(self) -> None:
        self.data = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if not self.data.done():
            self.data.set_result(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.data.done():
            self.data.set_result(b"")


async def by_protocol(host: str) -> bytes:
    transport, protocol = await asyncio.get_running_loop().create_connection(_Reply, host, PORT)
    try:
        transport.write(CR)
        return await protocol.data
    finally:
        transport.close()


async def by_socket(host: str) -> bytes:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, PORT))
        await loop.sock_sendall(sock, CR)
        return await loop.sock_recv(sock, 1024)
    finally:
        sock.close()


async def by_rdprobe(host: str) -> bytes:
    timeouts = Timeouts.from_timeout(TIMEOUT_S)
    result, _ = await attempt(
        host, PORT, PRIMARY, cookie=None, timeouts=timeouts, deadline=Deadline(timeouts.total)
    )
    return result.reply


METHODS: dict[str, Callable[[str], Awaitable[bytes]]] = {
    "rdprobe attempt": by_rdprobe,
    "asyncio streams": by_streams,
    "asyncio.Protocol": by_protocol,
    "loop.sock_*": by_socket,
}


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_round(method: Callable[[str], Awaitable[bytes]], hosts: list[str]) -> float:
    """CPU seconds per connection of one round; every reply must be a TPKT."""
    before = cpu_s()
    replies = await asyncio.wait_for(asyncio.gather(*(method(h) for h in hosts)), 120)
    spent = cpu_s() - before
    bad = sum(1 for r in replies if r[:1] != b"\x03")
    if bad:
        raise SystemExit(f"{bad} of {len(replies)} replies were not TPKT")
    return spent / len(hosts)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--per-listener", type=int, default=4, help="connections per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default="win2012-tls-nla", help="emulator profile")
    args = parser.parse_args()
    if not 1 <= args.listeners <= 60_000 or not 1 <= args.per_listener <= 16:
        parser.error("--listeners 1..60000, --per-listener 1..16")
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds 1..50")
    hosts = [f"127.2.{i // 250}.{i % 250 + 1}" for i in range(args.listeners)]
    cores = sorted(os.sched_getaffinity(0))
    child_cores, own_cores = ({cores[-1]}, set(cores[:-1])) if len(cores) > 1 else (None, None)

    def pin_child() -> None:
        if child_cores:
            os.sched_setaffinity(0, child_cores)

    env = {k: v for k, v in os.environ.items() if k != "RDPROBE_CHECK_CONSISTENCY"}
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, args.profile, str(PORT), *hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        preexec_fn=pin_child,
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(emulator.stdout.readline), 60)  # type: ignore[union-attr]
        if line.strip() != b"ready":
            raise SystemExit("the emulator listeners did not start")
        if own_cores:
            os.sched_setaffinity(0, own_cores)
        targets = hosts * args.per_listener
        await one_round(by_streams, targets)  # warm: imports, first connections
        spent: dict[str, list[float]] = {name: [] for name in METHODS}
        for _ in range(args.rounds):
            for name, method in METHODS.items():
                spent[name].append(await one_round(method, targets))
    finally:
        emulator.stdin.close()  # type: ignore[union-attr]
        try:
            emulator.wait(10)
        except subprocess.TimeoutExpired:
            emulator.kill()
            emulator.wait(5)
    where = f"client on core {sorted(own_cores)}, listeners on {sorted(child_cores)}"
    print(
        f"{len(targets)} connections a round ({args.listeners} {args.profile} listeners x "
        f"{args.per_listener}), {args.rounds} rounds per method; "
        + (where if own_cores and child_cores else "one core shared")
    )
    medians = {name: statistics.median(values) for name, values in spent.items()}
    for name, values in spent.items():
        print(
            f"  {name:17s}: {medians[name] * 1e6:6.1f} us CPU per connection (median; "
            f"{min(values) * 1e6:.1f}-{max(values) * 1e6:.1f})"
        )
    floor = min(v for k, v in medians.items() if k != "rdprobe attempt")
    print(f"  rdprobe attempt / fastest bare client = {medians['rdprobe attempt'] / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
