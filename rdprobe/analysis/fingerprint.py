"""Name the service that answered instead of RDP, from its first bytes (port conflicts), and what
an ISO transport listener that is not RDP sent instead of MCS."""

from __future__ import annotations

import re

from rdprobe.analysis.observations import ServiceGuess
from rdprobe.protocol import mcs, x224
from rdprobe.protocol.errors import ProtocolError

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


#: ISO 8327 session SPDU types that open an ISO session (CONNECT, ACCEPT, REFUSE): MMS, ACSE...
_ISO_SESSION_SPDUS = {0x0D: "CONNECT", 0x0E: "ACCEPT", 0x0C: "REFUSE"}
_S7COMM_ID = 0x32


def identify_iso_payload(pdu: bytes) -> str | None:
    """What a TPKT PDU sent in answer to the MCS Connect Initial carries, when it is not MCS.

    An RDP server answers with an X.224 Data TPDU holding T.125 MCS: a Connect Response (BER
    application tag 102, 7f 66) or a Disconnect Provider Ultimatum (MS-RDPBCGR 2.2.1.4). Any other
    Data TPDU is ISO transport (RFC 1006) carrying another protocol: its description is returned.
    None when the PDU is MCS or cannot be read (nothing is claimed then).
    """
    try:
        tpdu = x224.parse_server_tpdu(pdu)
    except ProtocolError:
        return None
    if not isinstance(tpdu, x224.DataTpdu) or not tpdu.user_data:
        return None
    user = tpdu.user_data
    if user.startswith(b"\x7f\x66") or mcs.is_disconnect_provider_ultimatum(user):
        return None
    if user[0] == _S7COMM_ID:
        return f"S7comm (protocol id 0x32): {preview(user, 24)}"
    if user[0] in _ISO_SESSION_SPDUS:
        name = _ISO_SESSION_SPDUS[user[0]]
        return f"an ISO 8327 session {name} (MMS / IEC 61850 and kin): {preview(user, 24)}"
    return f"X.224 data that is not MCS: {preview(user, 24)}"
