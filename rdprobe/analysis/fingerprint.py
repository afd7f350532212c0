"""Name the service that answered instead of RDP, from its first bytes (port conflicts)."""

from __future__ import annotations

import re

from rdprobe.analysis.observations import ServiceGuess

PREVIEW_BYTES = 64

_TLS_CONTENT_TYPES = {0x14, 0x15, 0x16, 0x17}
_RFB = re.compile(rb"^RFB (\d{3}\.\d{3})\n")


def preview(data: bytes, limit: int = PREVIEW_BYTES) -> str:
    """Printable ASCII kept, everything else as \\xNN; never control characters on a terminal."""
    out = []
    for b in data[:limit]:
        if 0x20 <= b < 0x7F and b != 0x5C:
            out.append(chr(b))
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out) + ("..." if len(data) > limit else "")


def _first_line(data: bytes) -> str:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    return preview(line, 120)


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type, version 3.x, plausible length."""
    return (
        len(data) >= 5
        and data[0] in _TLS_CONTENT_TYPES
        and data[1] == 3
        and data[2] <= 4
        and int.from_bytes(data[3:5], "big") <= 18432
    )


def identify(data: bytes) -> ServiceGuess:
    """Best guess of the service that sent ``data`` (the first bytes it sent)."""
    shown = preview(data)
    if data.startswith(b"HTTP/"):
        match = re.search(rb"\r?\nServer:[ \t]*([^\r\n]*)", data, re.IGNORECASE)
        server = preview(match.group(1), 120) if match else None
        status = _first_line(data)
        return ServiceGuess("HTTP", f"{status}; Server: {server}" if server else status, shown)
    if data.startswith(b"SSH-"):
        return ServiceGuess("SSH", _first_line(data), shown)
    m = _RFB.match(data)
    if m:
        return ServiceGuess("VNC", f"RFB {m.group(1).decode()}", shown)
    if looks_like_tls(data):
        kind = "alert" if data[0] == 0x15 else "handshake" if data[0] == 0x16 else "record"
        return ServiceGuess("TLS", f"TLS {kind} record", shown)
    if data.startswith(b"+OK"):
        return ServiceGuess("POP3", _first_line(data), shown)
    if data.startswith(b"* OK") or data.startswith(b"* PREAUTH"):
        return ServiceGuess("IMAP", _first_line(data), shown)
    if re.match(rb"^220[ -]", data):
        line = _first_line(data)
        upper = data.split(b"\n", 1)[0].upper()
        if b"SMTP" in upper or b"MAIL" in upper or b"POSTFIX" in upper or b"EXCHANGE" in upper:
            return ServiceGuess("SMTP", line, shown)
        if b"FTP" in upper:
            return ServiceGuess("FTP", line, shown)
        return ServiceGuess("SMTP or FTP", line, shown)
    if data.startswith((b"<!DOCTYPE", b"<html", b"<HTML")):
        return ServiceGuess("HTTP", "HTML without a status line", shown)
    return ServiceGuess("unknown", None, shown)
