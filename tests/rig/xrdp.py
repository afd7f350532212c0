"""Real xrdp listeners on loopback (`xrdp --nodaemon --config FILE`, one process each).

The package's /etc/xrdp/xrdp.ini is copied and its keys changed; `--nodaemon` writes no
pidfile, so instances on different addresses coexist. xrdp-sesman is not started (nothing up
to the MCS Connect Response needs it). Standard RDP Security uses /etc/xrdp/rsakeys.ini,
made here with `xrdp-keygen xrdp auto` when missing.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from . import Server, spawn, wait_listening
from .certs import CertFiles, valid_cert

__all__ = ["XRDP_INI", "XrdpServer", "edit_ini", "ensure_rsakeys", "start_xrdp"]

XRDP_INI = Path("/etc/xrdp/xrdp.ini")
RSAKEYS = Path("/etc/xrdp/rsakeys.ini")
SECURITY_LAYERS = ("negotiate", "tls", "rdp")
CRYPT_LEVELS = ("none", "low", "medium", "high", "fips")


class XrdpServer(Server):
    """A running xrdp; `config` is its xrdp.ini, `cert` the TLS certificate it serves."""

    kind = "xrdp"

    def __init__(self, host, port, processes, workdir, *, config: Path, cert: CertFiles | None):
        super().__init__(host, port, processes, workdir)
        self.config = config
        self.cert = cert


def edit_ini(text: str, changes: dict[str, dict[str, str]]) -> str:
    """Set `key=value` per section in an xrdp-style ini text; missing keys are added."""
    pending = {sec: dict(keys) for sec, keys in changes.items()}
    out: list[str] = []
    section = ""

    def flush(sec: str) -> None:
        for key, value in pending.pop(sec, {}).items():
            out.append(f"{key}={value}")

    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            flush(section)
            section = stripped[1:-1]
        elif "=" in stripped and not stripped.startswith((";", "#")):
            key = stripped.split("=", 1)[0].strip()
            if key in pending.get(section, {}):
                out.append(f"{key}={pending[section].pop(key)}")
                continue
        out.append(line)
    flush(section)
    for sec in list(pending):
        out.append(f"[{sec}]")
        flush(sec)
    return "\n".join(out) + "\n"


def ensure_rsakeys() -> None:
    """Create /etc/xrdp/rsakeys.ini (Standard RDP Security keys) if the package did not."""
    if not RSAKEYS.exists():
        subprocess.run(["xrdp-keygen", "xrdp", "auto"], check=True, capture_output=True, timeout=60)


def start_xrdp(
    tmp_path: Path,
    *,
    address: str,
    port: int = 3389,
    security_layer: str = "negotiate",
    crypt_level: str = "high",
    cert: CertFiles | Path | None = None,
    key: Path | None = None,
    ssl_protocols: str | None = None,
    tls_ciphers: str | None = None,
    log_level: str = "DEBUG",
    netns: str | None = None,
    timeout: float = 10.0,
) -> XrdpServer:
    """Start xrdp listening on address:port; returns once the port is listening.

    `cert`: a CertFiles, or a certificate path with `key`; None makes a valid self-signed
    certificate for `address`. `ssl_protocols` e.g. "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"
    (TLSv1/TLSv1.1 also need `tls_ciphers="DEFAULT:@SECLEVEL=0"`, as do 1024-bit or SHA-1
    certificates). Raises RuntimeError with the log tail if xrdp fails to listen in `timeout`.
    """
    if security_layer not in SECURITY_LAYERS:
        raise ValueError(f"security_layer must be one of {SECURITY_LAYERS}")
    if crypt_level not in CRYPT_LEVELS:
        raise ValueError(f"crypt_level must be one of {CRYPT_LEVELS}")
    ensure_rsakeys()
    work = tmp_path / f"xrdp-{address}-{port}"
    work.mkdir(parents=True, exist_ok=True)
    if cert is None:
        files: CertFiles | None = valid_cert(work / "cert", address)
    elif isinstance(cert, CertFiles):
        files = cert
    else:
        if key is None:
            raise ValueError("key is required with a certificate path")
        files = CertFiles(cert=Path(cert), key=Path(key), name="")
    log = work / "xrdp.log"
    globals_ = {
        "port": f"tcp://{address}:{port}" if ":" not in address else f"tcp://[{address}]:{port}",
        "security_layer": security_layer,
        "crypt_level": crypt_level,
        "certificate": str(files.cert),
        "key_file": str(files.key),
    }
    if ssl_protocols is not None:
        globals_["ssl_protocols"] = ssl_protocols
    if tls_ciphers is not None:
        globals_["tls_ciphers"] = tls_ciphers
    logging = {"LogFile": str(log), "LogLevel": log_level, "EnableSyslog": "false"}
    config = work / "xrdp.ini"
    config.write_text(
        edit_ini(XRDP_INI.read_text(), {"Globals": globals_, "Logging": logging}),
    )
    started = time.monotonic()
    argv = ["xrdp", "--nodaemon", "--config", config]
    proc = spawn("xrdp", argv, work / "xrdp.out", cwd=work, netns=netns)
    proc.extra_logs.append(log)
    wait_listening(proc, address, port, timeout)
    server = XrdpServer(address, port, [proc], work, config=config, cert=files)
    server.start_seconds = time.monotonic() - started
    return server
