"""A target's first TCP connect, made before asyncio is loaded, and the verdict of a port that
refused it.

``rdprobe check`` on one address connects here first, with a plain socket and the same connect
limit the asyncio prober uses. A refused, unreachable or timed-out connect is the whole
observation: it is judged at once, and neither asyncio nor ssl is ever imported (a closed port
answers in about the time ``nmap -Pn`` takes). A connect that succeeds hands its socket to the
prober (``rdprobe.live.negotiate.connect``) as the primary request's connection, so the server
sees exactly the connections it saw before. Works the same on Windows: the socket gets the
winsock settings that make a refusal immediate (rdprobe.live.winsock), and the error codes map
through :func:`tcp_outcome`, the one errno -> TcpOutcome table.
"""

from __future__ import annotations

import _socket  # the socket module's C half: its Python half builds enums worth ~3 ms at import
import errno
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.analysis.run_facts import RunConfig
from rdprobe.live.matrix import PRIMARY, TCP_ONLY, Request
from rdprobe.live.timing import now_ms
from rdprobe.protocol.errors import one_line

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    import socket

    from rdprobe.analysis.classify import Report
    from rdprobe.live.target import Target

#: Windows Sockets error codes (winerror.h) that a connect() raises there.
WSAEHOSTUNREACH, WSAENETUNREACH, WSAETIMEDOUT, WSAECONNREFUSED = 10065, 10051, 10060, 10061


def tcp_outcome(exc: OSError) -> TcpOutcome:
    """Map a connect() error to an outcome, on POSIX and Windows alike."""
    codes = {exc.errno, getattr(exc, "winerror", None)}
    if isinstance(exc, ConnectionRefusedError) or codes & {errno.ECONNREFUSED, WSAECONNREFUSED}:
        return TcpOutcome.REFUSED
    if codes & {errno.EHOSTUNREACH, WSAEHOSTUNREACH, errno.EHOSTDOWN}:
        return TcpOutcome.HOST_UNREACHABLE
    if codes & {errno.ENETUNREACH, WSAENETUNREACH}:
        return TcpOutcome.NET_UNREACHABLE
    if codes & {errno.EACCES, errno.EPERM}:
        return TcpOutcome.ADMIN_PROHIBITED
    if codes & {errno.ETIMEDOUT, WSAETIMEDOUT}:
        return TcpOutcome.TIMEOUT
    return TcpOutcome.ERROR


def connect_error(exc: OSError) -> str:
    """The text of a failed connect, worded the same whichever path raised it: the socket
    module says ``[Errno 111] Connection refused``, asyncio ``[Errno 111] Connect call failed
    ('10.0.0.1', 3389)`` for the same refusal. A code the C library has no words for (Windows
    Sockets' WSA* codes) keeps the exception's own text."""
    code = exc.errno
    if code is not None:
        words = os.strerror(code)
        if not words.startswith("Unknown error"):
            return f"[Errno {code}] {words}"
    return one_line(exc)


def timeout_error(limit: float) -> str:
    """The error text of a connect that got no answer within ``limit`` seconds."""
    return f"no answer within {limit:.1f} s"


class FirstConnect:
    """The outcome of the first connect; ``sock`` is the connected socket (non-blocking), which
    the prober takes over (:meth:`take`), or None. ``started``: time.monotonic() when the
    connect began (the target's deadline counts from there); ``at``: the same moment in UTC
    (when the probe of the target started, the observation's ``started``)."""

    __slots__ = ("at", "connect_ms", "error", "outcome", "sock", "started")

    def __init__(
        self,
        outcome: TcpOutcome,
        error: str | None,
        connect_ms: float | None,
        sock: _socket.socket | None,
        started: float,
        at: datetime | None = None,
    ) -> None:
        self.outcome, self.error, self.connect_ms = outcome, error, connect_ms
        self.sock, self.started = sock, started
        self.at = at if at is not None else datetime.now(UTC)

    def take(self) -> socket.socket | None:
        """The connected socket as a socket.socket, once (asyncio is loading it anyway)."""
        import socket

        raw, self.sock = self.sock, None
        return None if raw is None else socket.socket(fileno=raw.detach())

    def settles(self, retries: int, depth: str) -> bool:
        """This connect is the whole observation: at depth tcp (connect and close), or a failure
        that is not a timeout a retry (``--retries``) may still turn around."""
        if self.sock is not None:
            return depth == "tcp"
        return self.outcome is not TcpOutcome.TIMEOUT or retries <= 0

    def attempt(self, request: Request) -> Attempt:
        return Attempt(request.label, request.requested, self.outcome, self.error, self.connect_ms)


def connect_first(address: str, port: int, limit: float) -> FirstConnect | None:
    """One blocking connect of at most ``limit`` seconds to an IP literal; None when no socket
    can be made for it (the prober then connects, and reports why, as before)."""
    try:
        # bytes: a str host is IDNA-encoded first, and loading that codec costs more than
        # the whole connect (an IP literal is ASCII)
        family, _type, _proto, _name, sockaddr = _socket.getaddrinfo(
            address.encode("ascii"), port, 0, _socket.SOCK_STREAM, 0, _socket.AI_NUMERICHOST
        )[0]
        sock = _socket.socket(family, _socket.SOCK_STREAM)
    except (OSError, UnicodeError, IndexError):
        return None
    at, started = datetime.now(UTC), time.monotonic()
    try:
        if sys.platform == "win32":  # no SYN retries after a RST: a refusal is at once
            from rdprobe.live import winsock

            winsock.tune(sock, limit)
        sock.settimeout(limit)
        sock.connect(sockaddr)
        sock.setblocking(False)
    except TimeoutError:
        sock.close()
        return FirstConnect(TcpOutcome.TIMEOUT, timeout_error(limit), None, None, started, at)
    except OSError as exc:
        sock.close()
        return FirstConnect(
            tcp_outcome(exc), connect_error(exc), now_ms(started), None, started, at
        )
    except BaseException:  # Ctrl-C: the caller reports the interruption
        sock.close()
        raise
    return FirstConnect(TcpOutcome.CONNECTED, None, now_ms(started), sock, started, at)


def start_observation(
    target: Target, address: str, timeout_s: float, cookie: str | None, when: datetime
) -> TargetObservation:
    """The empty observation of one address, with how the probe runs."""
    obs = TargetObservation(target.host, target.port, address, when)
    obs.config = RunConfig(timeout_s=timeout_s, cookie=cookie)
    return obs


def judge_first(
    target: Target,
    first: FirstConnect,
    *,
    timeout_s: float,
    cookie: str | None,
    depth: str,
    clock: Callable[[], datetime],
) -> Report:
    """The report of an address whose first connect settled it (``first.settles``): the same
    observation the prober makes of it (one attempt, the primary request's, or depth tcp's, whose
    connection is closed here with nothing sent)."""
    from rdprobe.analysis.classify import classify

    if first.sock is not None:
        first.sock.close()  # depth tcp: connected, nothing to send
        first.sock = None

    obs = start_observation(target, target.host, timeout_s, cookie, first.at)
    obs.attempts.append(first.attempt(TCP_ONLY if depth == "tcp" else PRIMARY))
    return classify(obs, clock())
