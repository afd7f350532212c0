"""Windows socket settings that keep a refused port fast and distinct from a filtered one.

Windows answers a RST to its SYN by sending the SYN again (twice, about 2 s in all) before it
reports WSAECONNREFUSED, so under ``find``'s 2 s timeout a closed port would read as filtered.
Per socket, before connect: ``SIO_TCP_INITIAL_RTO`` with MaxSynRetransmissions =
TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS (mstcpip.h; honoured from Windows 10 1709 / build 16299)
turns the SYN retries off, so a RST is a refusal at once; ``TCP_MAXRT`` (ws2ipdef.h, seconds)
caps the whole connect at rdprobe's own connect timeout. Both are optimisations: when Windows
refuses them the connect goes on as before. Nothing here runs on other systems.
"""

from __future__ import annotations

import math
import socket
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import _socket  # socket.socket's base: the first connect's socket (rdprobe.live.first_connect)

WINDOWS = sys.platform == "win32"
#: ws2ipdef.h: IPPROTO_TCP option, the connection's maximum retransmission time in seconds.
TCP_MAXRT = 5
#: mstcpip.h: _WSAIOW(IOC_VENDOR, 17).
SIO_TCP_INITIAL_RTO = 0x98000011
#: TCP_INITIAL_RTO_PARAMETERS {USHORT Rtt = TCP_INITIAL_RTO_UNSPECIFIED_RTT (0xffff),
#: UCHAR MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS (0xfe)}, padded to 4.
NO_SYN_RETRANSMISSIONS = struct.pack("<HBx", 0xFFFF, 0xFE)

Ioctl = Callable[[int, int, bytes], bool]


def _wsaioctl(fd: int, code: int, data: bytes) -> bool:
    """WSAIoctl with an input buffer (Python's socket.ioctl knows only three codes)."""
    import ctypes
    from ctypes import wintypes

    ws2 = ctypes.WinDLL("ws2_32")  # type: ignore[attr-defined]
    returned = wintypes.DWORD(0)
    buf = ctypes.create_string_buffer(data, len(data))
    rc = ws2.WSAIoctl(
        ctypes.c_size_t(fd), wintypes.DWORD(code), buf, wintypes.DWORD(len(data)),
        None, wintypes.DWORD(0), ctypes.byref(returned), None, None,
    )  # fmt: skip
    return rc == 0


def tune(
    sock: _socket.socket, connect_timeout_s: float, *, ioctl: Ioctl | None = None
) -> list[str]:
    """Apply both settings to an unconnected TCP socket; the names of those Windows took."""
    applied = []
    try:
        seconds = max(1, math.ceil(connect_timeout_s))
        sock.setsockopt(socket.IPPROTO_TCP, TCP_MAXRT, seconds)
        applied.append("TCP_MAXRT")
    except OSError:
        pass
    try:
        if (ioctl or _wsaioctl)(sock.fileno(), SIO_TCP_INITIAL_RTO, NO_SYN_RETRANSMISSIONS):
            applied.append("SIO_TCP_INITIAL_RTO")
    except (OSError, AttributeError, ValueError):
        pass
    return applied


def connect_socket(address: str, port: int, connect_timeout_s: float) -> socket.socket | None:
    """A non-blocking, tuned TCP socket for ``address`` (an IP literal) on Windows; None
    elsewhere or for a name (asyncio then makes its own socket as before)."""
    if not WINDOWS:
        return None
    try:
        info = socket.getaddrinfo(
            address, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
    except (OSError, UnicodeError):
        return None
    family = info[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    tune(sock, connect_timeout_s)
    return sock
