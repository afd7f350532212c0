"""Distinct loopback addresses (127.77.x.y) and free TCP ports for rig servers.

Every address handed out is unique across all processes on the machine until the owning
process exits: a claim file per address in a shared directory, taken with O_EXCL, and
reclaimed when the owner's pid is gone. Linux routes all of 127.0.0.0/8 over `lo`.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import socket
import tempfile
from pathlib import Path

__all__ = ["free_port", "loopback_address", "port_is_free"]

PREFIX = "127.77"
CLAIM_DIR = Path(tempfile.gettempdir()) / "rdprobe-rig-addresses"

_claimed: list[Path] = []
_cursor = itertools.count()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_claim(path: Path) -> bool:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text().strip() or "0")
            except (OSError, ValueError):
                return False
            if owner == os.getpid() or (owner > 0 and _pid_alive(owner)):
                return False
            with contextlib.suppress(OSError):
                path.unlink()  # stale claim from a dead process
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _claimed.append(path)
        return True
    return False


def loopback_address() -> str:
    """A 127.77.x.y address no other caller (in any process) holds; x in 1..254, y in 1..254."""
    CLAIM_DIR.mkdir(mode=0o1777, exist_ok=True)
    base = os.getpid() % 254  # spread processes apart so claims rarely collide
    for _ in range(254 * 254):
        n = next(_cursor)
        x = (base + n // 254) % 254 + 1
        y = n % 254 + 1
        addr = f"{PREFIX}.{x}.{y}"
        if _try_claim(CLAIM_DIR / addr):
            return addr
    raise RuntimeError("no free 127.77.x.y loopback address left")


def port_is_free(host: str, port: int) -> bool:
    """True when a TCP socket can bind host:port right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel reports free on `host` (ephemeral range; racy by nature)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@atexit.register
def _release() -> None:
    for path in _claimed:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()
    _claimed.clear()
