"""Zeek's rdp.log names for what a capture showed of one RDP connection.

The tables Zeek's RDP analyzer uses to name client builds, keyboard layouts ([MS-LCID] language
identifiers), encryption levels and methods (MS-RDPBCGR 2.2.1.3.2, 2.2.1.4.3), the server
certificate facts of TS_UD_SC_SEC1 (2.2.1.4.3, 2.2.1.4.3.1), and :func:`zeek_fields`, which
names an :class:`~rdprobe.capture.connection.RdpConnection`'s facts as rdp.log prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rdprobe.protocol import gcc_server, rdpsec
from rdprobe.protocol.x224 import NegotiationFailure, protocol_name

if TYPE_CHECKING:
    from rdprobe.capture.connection import RdpConnection

#: Zeek's names for client builds (rdp.log client_build).
CLIENT_BUILDS = {
    419: "RDP 4.0", 2195: "RDP 5.0", 2221: "RDP 5.0", 2600: "RDP 5.1", 3790: "RDP 5.2",
    6000: "RDP 6.0", 6001: "RDP 6.1", 6002: "RDP 6.2", 7600: "RDP 7.0", 7601: "RDP 7.1",
    9200: "RDP 8.0", 9600: "RDP 8.1", 25189: "RDP 8.0 (Mac)", 25282: "RDP 8.0 (Mac)",
}  # fmt: skip
#: Windows language identifiers of common keyboard layouts ([MS-LCID]), as Zeek names them.
KEYBOARD_LAYOUTS = {
    0x0401: "Arabic - Saudi Arabia", 0x0404: "Chinese - Taiwan", 0x0405: "Czech",
    0x0406: "Danish", 0x0407: "German - Germany", 0x0408: "Greek",
    0x0409: "English - United States", 0x040A: "Spanish - Traditional Sort",
    0x040B: "Finnish", 0x040C: "French - France", 0x040D: "Hebrew", 0x040E: "Hungarian",
    0x0410: "Italian - Italy", 0x0411: "Japanese", 0x0412: "Korean",
    0x0413: "Dutch - Netherlands", 0x0414: "Norwegian (Bokmal)", 0x0415: "Polish",
    0x0416: "Portuguese - Brazil", 0x0419: "Russian", 0x041D: "Swedish", 0x041E: "Thai",
    0x041F: "Turkish", 0x0804: "Chinese - People's Republic of China",
    0x0807: "German - Switzerland", 0x0809: "English - United Kingdom",
    0x080C: "French - Belgium", 0x0816: "Portuguese - Portugal",
    0x0C09: "English - Australia", 0x0C0C: "French - Canada", 0x1009: "English - Canada",
    0x100C: "French - Switzerland",
}  # fmt: skip
ZEEK_LEVELS = {0: "None", 1: "Low", 2: "Client compatible", 3: "High", 4: "FIPS"}
ZEEK_METHODS = {0x00: "None", 0x01: "40bit", 0x02: "128bit", 0x08: "56bit", 0x10: "FIPS"}


def keyboard_layout_name(layout: int) -> str:
    """Zeek's wording: the table name, else the language part's name as a best guess."""
    if layout in KEYBOARD_LAYOUTS:
        return KEYBOARD_LAYOUTS[layout]
    if layout & 0xFFFF in KEYBOARD_LAYOUTS:
        return f"{KEYBOARD_LAYOUTS[layout & 0xFFFF]} (Best Guess for {layout})"
    return f"0x{layout:08x}"


def client_build_name(build: int) -> str:
    return CLIENT_BUILDS.get(build, f"RDP build {build}")


def certificate_facts(sec: gcc_server.ServerSecurity | None) -> dict[str, Any]:
    """cert_type, cert_count, cert_permanent, cert_verified of the server's TS_UD_SC_SEC1."""
    cert = sec.certificate if sec else None
    if cert is None:
        return {"cert_type": None, "cert_count": 0, "cert_permanent": None, "cert_verified": None,
                "cert_key_type": None, "cert_key_bits": None, "cert_public_exponent": None}  # fmt: skip
    if isinstance(cert, rdpsec.X509Chain):
        return {
            "cert_type": cert.cert_type,
            "cert_count": len(cert.certs),
            "cert_permanent": cert.permanent,
            "cert_verified": None,
            "cert_key_type": "RSA",
            "cert_key_bits": None,
            "cert_public_exponent": None,
        }
    return {
        "cert_type": cert.cert_type,
        "cert_count": 1,
        "cert_permanent": cert.permanent,
        "cert_verified": cert.verified,
        "cert_key_type": "RSA",
        "cert_key_bits": cert.modulus.bit_length(),
        "cert_public_exponent": cert.public_exponent,
    }


def zeek_fields(conn: RdpConnection) -> dict[str, str | None]:
    """The rdp.log fields as Zeek prints them (None where Zeek prints '-')."""
    req, cd, sd = conn.request, conn.client_data, conn.server_data
    core = cd.core if cd else None
    sec = sd.security if sd else None
    certs = certificate_facts(sec)
    neg = conn.negotiation
    result = None
    if isinstance(neg, NegotiationFailure):
        result = neg.code_name
    elif conn.connect_response is not None:
        result = (
            "Success" if conn.connect_response.result == 0 else conn.connect_response.result_name
        )
    elif conn.selected:
        result = "encrypted"
    return {
        "cookie": (req.cookie or "") if req else None,  # Zeek logs a CR without cookie as empty
        "result": result,
        "security_protocol": None if conn.selected is None else protocol_name(conn.selected),
        "client_channels": ",".join(n for n, _ in cd.channels) if cd and cd.channels else None,
        "keyboard_layout": keyboard_layout_name(core.keyboard_layout) if core else None,
        "client_build": client_build_name(core.client_build) if core else None,
        "client_name": core.client_name if core else None,
        "client_dig_product_id": core.client_dig_product_id if core else None,
        "desktop_width": str(core.desktop_width) if core else None,
        "desktop_height": str(core.desktop_height) if core else None,
        "requested_color_depth": core.requested_color_depth if core else None,
        "cert_type": {"proprietary": "RSA", "x509": "X.509"}.get(certs["cert_type"] or ""),
        "cert_count": str(certs["cert_count"]),
        "cert_permanent": None if certs["cert_permanent"] is None
        else ("T" if certs["cert_permanent"] else "F"),
        "encryption_level": ZEEK_LEVELS.get(sec.encryption_level) if sec else None,
        "encryption_method": ZEEK_METHODS.get(sec.encryption_method) if sec else None,
    }  # fmt: skip
