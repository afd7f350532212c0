"""Real non-RDP services on loopback, for "wrong service on the port" tests: nginx, sshd.

nginx runs from its own minimal nginx.conf (daemon off, every path in the work dir,
`server_tokens on` so the Server header carries the version), either plain HTTP or a
TLS-only listener. sshd runs with its own sshd_config and a host key made by ssh-keygen,
in the foreground (`-D -e`).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import Server, spawn, wait_listening
from .certs import CertFiles, valid_cert

__all__ = ["SSHD", "NginxServer", "SshdServer", "start_nginx", "start_sshd"]

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and insists on an absolute path
PRIVSEP_DIR = Path("/run/sshd")


class NginxServer(Server):
    """A running nginx; `tls` tells whether the listener is TLS-only, `cert` what it serves."""

    kind = "nginx"

    def __init__(self, host, port, processes, workdir, *, tls: bool, cert: CertFiles | None):
        super().__init__(host, port, processes, workdir)
        self.tls = tls
        self.cert = cert


class SshdServer(Server):
    """A running sshd; `host_key` is the public host key file."""

    kind = "sshd"

    def __init__(self, host, port, processes, workdir, *, host_key: Path):
        super().__init__(host, port, processes, workdir)
        self.host_key = host_key


def _listen(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def start_nginx(
    tmp_path: Path,
    *,
    address: str,
    port: int = 80,
    tls: bool = False,
    cert: CertFiles | None = None,
    ssl_protocols: str = "TLSv1.2 TLSv1.3",
    netns: str | None = None,
    timeout: float = 10.0,
) -> NginxServer:
    """Start nginx on address:port: plain HTTP, or with `tls` a TLS-only listener.

    Every request gets `200 rdprobe rig`. `cert` defaults to a valid self-signed one.
    """
    work = tmp_path / f"nginx-{address}-{port}"
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / "temp" / sub).mkdir(parents=True, exist_ok=True)
    files = (cert or valid_cert(work / "cert", address)) if tls else None
    ssl = ""
    if files is not None:
        ssl = (
            f'        ssl_certificate "{files.cert}";\n'
            f'        ssl_certificate_key "{files.key}";\n'
            f"        ssl_protocols {ssl_protocols};\n"
        )
    temp = work / "temp"
    conf = work / "nginx.conf"
    conf.write_text(
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f'pid "{work / "nginx.pid"}";\n'
        f'error_log "{work / "error.log"}" info;\n'
        "events { worker_connections 64; }\n"
        "http {\n"
        f'    access_log "{work / "access.log"}";\n'
        f'    client_body_temp_path "{temp / "client_body"}";\n'
        f'    proxy_temp_path "{temp / "proxy"}";\n'
        f'    fastcgi_temp_path "{temp / "fastcgi"}";\n'
        f'    uwsgi_temp_path "{temp / "uwsgi"}";\n'
        f'    scgi_temp_path "{temp / "scgi"}";\n'
        "    server_tokens on;\n"
        "    server {\n"
        f"        listen {_listen(address, port)}{' ssl' if tls else ''};\n"
        f"{ssl}"
        "        location / { default_type text/plain; return 200 'rdprobe rig\\n'; }\n"
        "    }\n"
        "}\n"
    )
    started = time.monotonic()
    argv = ["nginx", "-p", work, "-c", conf, "-e", work / "error.log"]
    proc = spawn("nginx", argv, work / "nginx.out", cwd=work, netns=netns)
    proc.extra_logs.append(work / "error.log")
    wait_listening(proc, address, port, timeout)
    server = NginxServer(address, port, [proc], work, tls=tls, cert=files)
    server.start_seconds = time.monotonic() - started
    return server


def start_sshd(
    tmp_path: Path,
    *,
    address: str,
    port: int = 22,
    netns: str | None = None,
    timeout: float = 10.0,
) -> SshdServer:
    """Start OpenSSH sshd on address:port (no logins possible: no PAM, no passwords)."""
    work = tmp_path / f"sshd-{address}-{port}"
    work.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    key = work / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rdprobe-rig", "-f", key],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    conf = work / "sshd_config"
    conf.write_text(
        f"ListenAddress {_listen(address, port)}\n"
        f'HostKey "{key}"\n'
        f'PidFile "{work / "sshd.pid"}"\n'
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin no\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile none\n"
        "LogLevel INFO\n"
    )
    started = time.monotonic()
    argv = [SSHD, "-D", "-e", "-f", conf]
    proc = spawn("sshd", argv, work / "sshd.log", cwd=work, netns=netns)
    wait_listening(proc, address, port, timeout)
    server = SshdServer(address, port, [proc], work, host_key=Path(f"{key}.pub"))
    server.start_seconds = time.monotonic() - started
    return server
