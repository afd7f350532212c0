"""Real FreeRDP shadow server (the only Debian RDP server with NLA) on loopback.

Each instance gets its own Xvfb (display chosen by Xvfb itself through -displayfd, then
waited for with xdpyinfo, since Xvfb reports the display before it accepts clients; with
`-noreset`, as otherwise Xvfb resets when xdpyinfo disconnects and the shadow server fails to
open the display about one start in eight), its own HOME holding
.config/freerdp/shadow/shadow.crt/.key (the TLS certificate it serves), and a SAM file made by
`winpr-hash -f sam` for NLA. Its NTLM CHALLENGE names are the machine's host name, recorded
as `.hostname`.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import RigProcess, Server, spawn, wait_listening
from .certs import CertFiles, valid_cert

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USER", "ShadowServer", "start_shadow", "start_xvfb"]

DEFAULT_USER = "rdprobe"
DEFAULT_PASSWORD = "Rdprobe-Test-Pass1"
SECURITY = ("nla", "tls", "rdp", "ext", None)


class ShadowServer(Server):
    """A running freerdp-shadow-cli with its Xvfb.

    `hostname`: name the NTLM target info carries; `user`/`password`: the SAM account;
    `display`: the X display number; `cert`: the TLS certificate served; `sec`: the mode.
    """

    kind = "freerdp-shadow"

    def __init__(self, host, port, processes, workdir, **info: object) -> None:
        super().__init__(host, port, processes, workdir)
        self.hostname: str = str(info["hostname"])
        self.user: str = str(info["user"])
        self.password: str = str(info["password"])
        self.display = int(info["display"])  # type: ignore[call-overload]
        self.cert: CertFiles = info["cert"]  # type: ignore[assignment]
        self.sec: str | None = info["sec"]  # type: ignore[assignment]


def _read_display(fd: int, proc: RigProcess, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not proc.alive():
            proc.stop()
            raise RuntimeError(
                f"Xvfb reported no display within {timeout:.1f}s:\n{proc.log_tail()}"
            )
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            data += chunk
    try:
        return int(data.strip())
    except ValueError:
        proc.stop()
        raise RuntimeError(f"Xvfb wrote {data!r} for its display:\n{proc.log_tail()}") from None


def start_xvfb(workdir: Path, timeout: float = 10.0) -> tuple[RigProcess, int]:
    """Start Xvfb on a display it picks itself; return once xdpyinfo can open it."""
    read_fd, write_fd = os.pipe()
    try:
        argv = [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            *"-nolisten tcp -noreset -screen 0 800x600x24".split(),
        ]
        proc = spawn("Xvfb", argv, workdir / "xvfb.log", pass_fds=[write_fd])
        os.close(write_fd)
        write_fd = -1
        display = _read_display(read_fd, proc, timeout)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            res = subprocess.run(
                ["xdpyinfo", "-display", f":{display}"],
                capture_output=True, timeout=max(0.5, min(2.0, left)),
            )  # fmt: skip
            if res.returncode == 0:
                return proc, display
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline or not proc.alive():
            proc.stop()
            raise RuntimeError(f"display :{display} not answering xdpyinfo:\n{proc.log_tail()}")
        time.sleep(0.05)


def start_shadow(
    tmp_path: Path,
    *,
    address: str,
    port: int = 3389,
    sec: str | None = "nla",
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    cert: CertFiles | None = None,
    netns: str | None = None,
    timeout: float = 15.0,
) -> ShadowServer:
    """Start Xvfb + freerdp-shadow-cli on address:port with /sec:`sec` (None: no /sec flag).

    `cert` (default: a valid self-signed certificate for `address`) is installed as the
    instance's shadow.crt/.key. Raises RuntimeError with log tails on failure.
    """
    if sec not in SECURITY:
        raise ValueError(f"sec must be one of {SECURITY}")
    work = tmp_path / f"shadow-{address}-{port}"
    home = work / "home"
    shadow_dir = home / ".config" / "freerdp" / "shadow"
    shadow_dir.mkdir(parents=True, exist_ok=True)
    cert = cert or valid_cert(work / "cert", address)
    shutil.copyfile(cert.cert, shadow_dir / "shadow.crt")
    shutil.copyfile(cert.key, shadow_dir / "shadow.key")
    (shadow_dir / "shadow.key").chmod(0o600)
    sam = work / "SAM"
    res = subprocess.run(
        ["winpr-hash", "-u", user, "-p", password, "-f", "sam"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    sam.write_text(res.stdout)

    started = time.monotonic()
    xvfb, display = start_xvfb(work, timeout)
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "HOME": str(home),
        "DISPLAY": f":{display}",
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    bind = f"[{address}]" if ":" in address else address
    argv = ["freerdp-shadow-cli", f"/bind-address:{bind}", f"/port:{port}", f"/sam-file:{sam}"]
    if sec is not None:
        argv.append(f"/sec:{sec}")
    try:
        proc = spawn(
            "freerdp-shadow-cli", argv, work / "shadow.log", env=env, cwd=work, netns=netns
        )
        wait_listening(proc, address, port, timeout)
    except BaseException:
        xvfb.stop()
        raise
    server = ShadowServer(
        address, port, [xvfb, proc], work,
        hostname=socket.gethostname(), user=user, password=password,
        display=display, cert=cert, sec=sec,
    )  # fmt: skip
    server.start_seconds = time.monotonic() - started
    return server
