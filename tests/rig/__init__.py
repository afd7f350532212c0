"""Test rig: real servers (xrdp, FreeRDP shadow, nginx, sshd) on loopback addresses.

Linux and root only. Every server runs in its own process group (own session) so that
stopping it also ends the children it forked; every wait is bounded; a start that fails
raises RuntimeError carrying the tail of the server's log. Servers are context managers:

    with start_xrdp(tmp_path, address=loopback_address()) as srv:
        ...connect to (srv.host, srv.port)...

Helpers here are shared by the rig modules and usable from tests (skip helpers, waits).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Self

import pytest

__all__ = [
    "RigProcess",
    "Server",
    "log_tail",
    "missing_binaries",
    "require_binaries",
    "require_root",
    "rig_address",
    "rig_servers",
    "server_pool",
    "socket_listening",
    "spawn",
    "stop_all",
    "terminate",
    "wait_listening",
    "wait_tcp",
]

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
POLL = 0.02  # seconds between checks in every wait loop
_PR_SET_PDEATHSIG = 1

_LIVE: set[RigProcess] = set()


def missing_binaries(*names: str) -> list[str]:
    """Names from `names` not found on PATH (sbin included, as root sees it)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [n for n in names if shutil.which(n, path=path) is None]


def require_root() -> None:
    """pytest.skip unless running as root on Linux."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root (real servers, network namespaces)")


def require_binaries(*names: str) -> None:
    """pytest.skip (one line) when root is missing or any binary is not installed."""
    require_root()
    missing = missing_binaries(*names)
    if missing:
        pytest.skip(f"missing binaries: {' '.join(missing)} (scripts/install-debian-deps.sh)")


def log_tail(path: Path | None, lines: int = 25) -> str:
    """Last `lines` lines of a log file, or a note when there is none."""
    if path is None:
        return "(no log)"
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


class RigProcess:
    """One child process started by the rig, with its log file."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path | None) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.extra_logs: list[Path] = []  # e.g. a LogFile the server writes itself
        _LIVE.add(self)

    def log_tail(self, lines: int = 25) -> str:
        """Tail of the captured output and of every extra log that has content."""
        parts = [log_tail(self.log, lines)]
        for extra in self.extra_logs:
            if extra.exists() and extra.stat().st_size:
                parts.append(f"--- {extra.name}:\n{log_tail(extra, lines)}")
        return "\n".join(parts)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> int | None:
        """End the whole process group (TERM, then KILL) and reap; returns the exit status."""
        _LIVE.discard(self)
        return terminate(self.popen)


def spawn(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    log: Path | None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    netns: str | None = None,
    pass_fds: Sequence[int] = (),
) -> RigProcess:
    """Start `argv` in a new session (own process group), output appended to `log`.

    With `netns`, the program runs inside that network namespace (`ip netns exec` execs it,
    so the pid is the server's own).
    """
    args = [os.fspath(a) for a in argv]
    if netns is not None:
        args = ["ip", "netns", "exec", netns, *args]
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    try:
        popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
            preexec_fn=_die_with_parent,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]
    return RigProcess(name, popen, log)


def _die_with_parent() -> None:
    """In the child: SIGKILL me if the test process dies without cleaning up (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def terminate(popen: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> int | None:
    """SIGTERM the process group, wait up to `grace`, then SIGKILL and reap (bounded)."""
    if popen.poll() is None:
        _signal_group(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Children left in the group (xrdp forks per connection, nginx workers) go too.
    _signal_group(popen.pid, signal.SIGKILL)
    try:
        return popen.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_LIVE):
        proc.stop()


class Server:
    """A running server: `.host`, `.port`, `.stop()`; a context manager that stops on exit.

    `processes` are stopped in reverse order (the server before its helpers, e.g. Xvfb).
    `start_seconds` is the measured time from spawn until the port was listening.
    """

    kind = "server"

    def __init__(self, host: str, port: int, processes: Sequence[RigProcess], workdir: Path):
        self.host = host
        self.port = port
        self.processes = list(processes)
        self.workdir = workdir
        self.start_seconds = 0.0

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def log(self) -> Path | None:
        """The main server process's captured output."""
        return self.processes[-1].log if self.processes else None

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(p.log_tail(lines) for p in self.processes)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{self.kind} {self.host}:{self.port} up in {self.start_seconds:.3f}s>"


def _proc_net_key(host: str, port: int) -> tuple[str, str]:
    """(/proc/net file, local address column) for a listening socket on host:port."""
    ip = ipaddress.ip_address(host)
    packed = ip.packed
    # /proc/net/tcp{,6} prints each 32-bit word of the address in host (little-endian) order.
    words = [packed[i : i + 4][::-1].hex().upper() for i in range(0, len(packed), 4)]
    return ("tcp" if ip.version == 4 else "tcp6", f"{''.join(words)}:{port:04X}")


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def socket_listening(pid: int, host: str, port: int) -> bool:
    """True when process `pid` holds a TCP socket in LISTEN state on host:port.

    Reads /proc/PID/net/tcp{,6}, which shows the process's own network namespace, so it
    works for servers inside a namespace too, without making a connection to them.
    """
    table, local = _proc_net_key(host, port)
    try:
        rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return False
    wanted = {
        f[9] for f in (r.split() for r in rows) if len(f) > 9 and f[1] == local and f[3] == "0A"
    }
    return bool(wanted & _socket_inodes(pid))


def wait_listening(proc: RigProcess, host: str, port: int, timeout: float) -> float:
    """Wait until `proc` listens on host:port; returns the seconds waited.

    Raises RuntimeError with the log tail when the process exits or `timeout` passes.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if socket_listening(proc.pid, host, port):
            return time.monotonic() - start
        if not proc.alive():
            status = proc.popen.returncode
            proc.stop()
            raise RuntimeError(
                f"{proc.name} exited with status {status} before listening on {host}:{port}; "
                f"log tail:\n{proc.log_tail()}"
            )
        if time.monotonic() >= deadline:
            proc.stop()
            raise RuntimeError(
                f"{proc.name} not listening on {host}:{port} after {timeout:.1f}s; "
                f"log tail:\n{proc.log_tail()}"
            )
        time.sleep(POLL)


def wait_tcp(host: str, port: int, timeout: float = 10.0) -> float:
    """Wait until host:port accepts a TCP connection (bounded); returns seconds waited."""
    start = time.monotonic()
    deadline = start + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=min(1.0, timeout)):
                return time.monotonic() - start
        except OSError as exc:
            last = exc
            time.sleep(POLL * 5)
    raise RuntimeError(f"{host}:{port} did not accept TCP within {timeout:.1f}s: {last}")


def stop_all(servers: Iterable[Server]) -> None:
    """Stop every server, even if one stop raises."""
    errors: list[BaseException] = []
    for srv in servers:
        try:
            srv.stop()
        except Exception as exc:  # pragma: no cover - best effort cleanup
            errors.append(exc)
    if errors:
        raise errors[0]


# --- pytest fixtures: import them into conftest.py (`from rig import rig_address, ...`) ---


@pytest.fixture
def rig_address() -> str:
    """A loopback address (127.77.x.y) no other test holds."""
    from .ports import loopback_address

    return loopback_address()


@contextlib.contextmanager
def server_pool() -> Iterator[list[Server]]:
    """A list to append started servers to; all are stopped on exit, even on error."""
    servers: list[Server] = []
    try:
        yield servers
    finally:
        stop_all(reversed(servers))


@pytest.fixture
def rig_servers() -> Iterator[list[Server]]:
    """`server_pool()` as a fixture: servers appended are stopped at teardown."""
    with server_pool() as servers:
        yield servers
