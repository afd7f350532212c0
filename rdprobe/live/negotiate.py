"""One TCP connection, one X.224 Connection Request, one reply: the Attempt observation.

The asyncio adapter around rdprobe.protocol.x224. It never raises for anything the network or the
server does; every outcome becomes a field of the Attempt.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import Callable

from rdprobe.analysis.observations import Attempt, TcpOutcome
from rdprobe.live import winsock
from rdprobe.live.first_connect import FirstConnect, connect_error, tcp_outcome, timeout_error
from rdprobe.live.matrix import MATRIX, PRIMARY, Request
from rdprobe.live.timing import (
    CLOSE_LIMIT_S,
    Deadline,
    Timeouts,
    close_writer,
    drain_within,
    now_ms,
)
from rdprobe.protocol import x224
from rdprobe.protocol.errors import one_line
from rdprobe.protocol.reply import BANNER_LIMIT, ReplyKind, sniff_reply

__all__ = ["MATRIX", "PRIMARY", "Request", "attempt", "connect", "read_reply", "tcp_outcome"]

#: After the first non-TPKT bytes, how long to wait for the rest of a banner or HTTP response.
BANNER_LINGER_S = 0.3


@functools.lru_cache(maxsize=64)
def _request_bytes(cookie: str | None, requested: int | None) -> bytes:
    """The Connection Request of a matrix row: the same bytes for every target of a sweep."""
    return x224.build_request(cookie=cookie, requested=requested)


async def _open(
    address: str,
    port: int,
    limit: float,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    connected: socket.socket | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio.open_connection; on Windows through a socket tuned so a refusal is immediate
    (rdprobe.live.winsock); over ``connected`` (the first connect's socket) when given."""
    if connected is not None:
        try:
            return await asyncio.open_connection(sock=connected)
        except BaseException:
            connected.close()
            raise
    sock = winsock.connect_socket(address, port, limit)
    if sock is None:
        return await asyncio.open_connection(
            address, port, ssl=ssl_context, server_hostname=server_hostname
        )
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
        return await asyncio.open_connection(
            sock=sock, ssl=ssl_context, server_hostname=server_hostname if ssl_context else None
        )
    except BaseException:
        sock.close()
        raise


async def connect(
    address: str,
    port: int,
    timeouts: Timeouts,
    deadline: Deadline,
    *,
    retries: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    first_connect: FirstConnect | None = None,
) -> tuple[
    TcpOutcome, str | None, float | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
]:
    """(outcome, error, connect_ms, streams). Retries only connection timeouts. ``first_connect``
    is the first try, already made (rdprobe.live.first_connect): its socket is taken over, or
    its failure counts as the first of the tries."""
    outcome, error = TcpOutcome.TIMEOUT, None
    tries = retries + 1
    if (made := first_connect) is not None:
        if (sock := made.take()) is not None:
            try:
                streams = await _open(address, port, 0, None, None, sock)
            except OSError as exc:
                return tcp_outcome(exc), connect_error(exc), made.connect_ms, None
            return TcpOutcome.CONNECTED, None, made.connect_ms, streams
        if made.outcome is not TcpOutcome.TIMEOUT:
            return made.outcome, made.error, made.connect_ms, None
        outcome, error, tries = made.outcome, made.error, tries - 1
    for _ in range(tries):
        limit = deadline.limit(timeouts.connect)
        if limit <= 0:
            break
        start = time.monotonic()
        try:
            async with asyncio.timeout(limit):  # no extra task per connect, unlike wait_for
                streams = await _open(address, port, limit, ssl_context, server_hostname)
            return TcpOutcome.CONNECTED, None, now_ms(start), streams
        except TimeoutError:
            outcome, error = TcpOutcome.TIMEOUT, timeout_error(limit)
            continue
        except OSError as exc:
            return tcp_outcome(exc), connect_error(exc), now_ms(start), None
        except (ssl.SSLError, ValueError) as exc:
            return TcpOutcome.ERROR, one_line(exc), now_ms(start), None
    return outcome, error, None, None


async def read_reply(
    reader: asyncio.StreamReader, timeouts: Timeouts, deadline: Deadline, start: float
) -> tuple[ReplyKind, bytes, x224.ServerTpdu | None, str | None, float | None]:
    """Read what the server sends after a CR: (kind, bytes, tpdu, error, first_byte_ms).

    One timer for the whole reply (the read phase), not one per read."""
    buf = b""
    first: float | None = None
    phase = Deadline(deadline.limit(timeouts.read))
    try:
        async with asyncio.timeout(phase.remaining()):
            while True:
                sniffed = sniff_reply(buf)
                if sniffed.kind is ReplyKind.NOT_TPKT:
                    break  # the banner's linger, outside this phase's timer
                if sniffed.kind is ReplyKind.TPDU:
                    return ReplyKind.TPDU, buf, sniffed.tpdu, None, first
                if sniffed.kind is not None:  # OVERSIZED, MALFORMED
                    return sniffed.kind, buf, None, sniffed.error, first
                try:
                    chunk = await reader.read(max(sniffed.needed, 1))
                except OSError as exc:  # ConnectionError included: a reset
                    kind = ReplyKind.RESET if not buf else ReplyKind.TRUNCATED
                    reset = buf and isinstance(exc, ConnectionError)
                    return kind, buf, None, "reset mid-PDU" if reset else one_line(exc), first
                if not chunk:
                    if not buf:
                        return ReplyKind.CLOSED, buf, None, None, first
                    return ReplyKind.TRUNCATED, buf, None, "closed mid-PDU", first
                if first is None:
                    first = now_ms(start)
                buf += chunk
    except TimeoutError:
        if not buf:
            return ReplyKind.SILENT, buf, None, None, first
        return ReplyKind.SLOW, buf, None, "still incomplete at the deadline", first
    return await _linger_banner(reader, buf, phase, first)


async def _linger_banner(
    reader: asyncio.StreamReader, buf: bytes, phase: Deadline, first: float | None
) -> tuple[ReplyKind, bytes, None, None, float | None]:
    """Collect a little more of a non-RDP reply, for naming the service."""
    linger = Deadline(min(BANNER_LINGER_S, phase.remaining()))
    while len(buf) < BANNER_LIMIT and not linger.expired:
        try:
            async with asyncio.timeout(linger.remaining()):
                chunk = await reader.read(BANNER_LIMIT - len(buf))
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        buf += chunk
    return ReplyKind.NOT_TPKT, buf[:BANNER_LIMIT], None, None, first


async def _ended_by_server(reader: asyncio.StreamReader, wait: float) -> str | None:
    """'closed' or 'reset' when the server ends the connection within ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            data = await reader.read(1)
    except TimeoutError:
        return None
    except ConnectionError:
        return "reset"
    except OSError:
        return "reset"
    return "closed" if not data else None


class Opening:
    """A slot of a host's limit of connections being opened (``--per-host``), held from before
    the connect until the server's reply is read, not while the connection lingers or is used
    afterwards: a server that has replied has accepted the connection, and connections not yet
    accepted are what overflow a small listen backlog (xrdp's is 2). ``Opening(None)``: no limit.
    """

    __slots__ = ("_held", "_limit")

    def __init__(self, limit: asyncio.Semaphore | None) -> None:
        self._limit, self._held = limit, False

    async def __aenter__(self) -> Opening:
        if self._limit is not None:
            await self._limit.acquire()
            self._held = True
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.replied()

    def replied(self, _kind: ReplyKind | None = None) -> None:
        if self._held and self._limit is not None:
            self._held = False
            self._limit.release()

    def then(self, on_reply: Callable[[ReplyKind], None] | None) -> Callable[[ReplyKind], None]:
        """The reply callback that frees the slot first, then calls ``on_reply``."""

        def replied(kind: ReplyKind) -> None:
            self.replied()
            if on_reply is not None:
                on_reply(kind)

        return replied


async def attempt(
    address: str,
    port: int,
    request: Request,
    *,
    cookie: str | None,
    timeouts: Timeouts,
    deadline: Deadline,
    retries: int = 0,
    keep_open: bool | Callable[[x224.ConnectionConfirm], bool] = False,
    linger: float = 0.0,
    on_reply: Callable[[ReplyKind], None] | None = None,
    first_connect: FirstConnect | None = None,
    opening: asyncio.Semaphore | None = None,
) -> tuple[Attempt, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    """Connect, send the CR, read the reply. With keep_open (True, or a test of the confirm) and
    a confirm, the streams are returned open (the caller closes them); otherwise they are closed
    here. With ``linger``, wait that long after a confirm to see whether the server drops the
    connection right away; ``on_reply`` is called as soon as the reply is read, before the
    linger, so that a caller can start what the reply allows without waiting for it.
    ``first_connect``: the connect already made (see :func:`connect`).

    ``opening``: the host's limit of connections being opened (:class:`Opening`)."""
    async with Opening(opening) as slot:
        replied = slot.then(on_reply)
        outcome, error, connect_ms, streams = await connect(
            address, port, timeouts, deadline, retries=retries, first_connect=first_connect
        )
        if streams is None:
            return Attempt(request.label, request.requested, outcome, error, connect_ms), None
        reader, writer = streams
        start = time.monotonic()
        keep = False
        try:
            try:
                writer.write(_request_bytes(cookie, request.requested))
                await drain_within(writer, deadline.limit(timeouts.read))
            except (OSError, TimeoutError):
                pass  # the reply (or its absence) tells the story
            kind, data, tpdu, err, first = await read_reply(reader, timeouts, deadline, start)
            replied(kind)  # the slot is free from here on
            ended = None
            if (
                linger > 0
                and isinstance(tpdu, x224.ConnectionConfirm)
                and not isinstance(tpdu.negotiation, x224.NegotiationFailure)
            ):  # after a failure the server is right to close
                ended = await _ended_by_server(reader, deadline.limit(linger))
            result = Attempt(
                request.label,
                request.requested,
                TcpOutcome.CONNECTED,
                err,
                connect_ms,
                first,
                kind,
                data,
                tpdu,
                ended,
            )
            keep = isinstance(tpdu, x224.ConnectionConfirm) and (
                keep_open(tpdu) if callable(keep_open) else keep_open
            )
            return result, (reader, writer) if keep else None
        finally:
            if not keep:
                await close_writer(writer, deadline.limit(CLOSE_LIMIT_S))
