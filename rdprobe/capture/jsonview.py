"""The JSON view of a capture's connection, and the certificate checks it shows (issue 9, 14).

:func:`connection_dict` is :meth:`RdpConnection.to_dict <rdprobe.capture.connection.RdpConnection.to_dict>`:
the "connection" object of ``rdprobe pcap --json`` (documented in docs/json-schema.md).
:func:`certificate_error` tells a certificate no certificate library can read, whatever it raises.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from rdprobe.capture.zeek_names import certificate_facts, client_build_name, keyboard_layout_name
from rdprobe.protocol import gcc, tlsrec
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    NegotiationFailure,
    NegotiationResponse,
    protocol_name,
)

if TYPE_CHECKING:
    from rdprobe.capture.connection import RdpConnection

TIMING_KEYS = ("syn", "synack", "ack", "request_sent", "cr", "first_reply", "cc", "mcs_ci",
               "mcs_cr", "tls_client_hello", "tls_server_hello", "udp_syn", "udp_synack",
               "end", "last")  # fmt: skip


def certificate_error(der: bytes, position: int = 0) -> dict[str, Any] | None:
    """None when the certificate loads; else its position, size, SHA-256 and the one-line reason.

    Catches every exception: cryptography raises InvalidVersion, ValueError and others that are
    not ProtocolError on certificates OpenSSL accepts (issue 14).
    """
    from cryptography import x509

    try:
        x509.load_der_x509_certificate(der)
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return {
            "position": position,
            "size": len(der),
            "sha256": hashlib.sha256(der).hexdigest(),
            "error": f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__,
        }
    return None


def leaf_exponent(der: bytes) -> int | None:
    """The RSA public exponent of a DER certificate; None if not RSA or unreadable."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except Exception:
        return None
    return key.public_numbers().e if isinstance(key, rsa.RSAPublicKey) else None


def connection_dict(self: RdpConnection) -> dict[str, Any]:
    """The pcap-specific "connection" object of the JSON output (docs/json-schema.md)."""
    req, cd, sd = self.request, self.client_data, self.server_data
    core = cd.core if cd else None
    sec = sd.security if sd else None
    neg = self.negotiation
    t0 = self.timing.get("syn", self.first_ts)
    return {
        "transport": self.transport,
        "client": self.client_address,
        "client_port": self.client_port,
        "server": self.server_address,
        "server_port": self.server_port,
        "first_seen": self.started.isoformat(),
        # first packet to last packet, as Zeek, tshark and Arkime measure it
        "duration_s": None if self.end_ts is None else round(self.end_ts - self.first_ts, 6),
        "end_reason": self.end_reason,
        "ended_by": self.ended_by,
        "cookie": req.cookie if req else None,
        "routing_token": req.routing_token.decode("latin-1") if req and req.routing_token else None,
        "requested": self.requested,
        "requested_name": None if self.requested is None else protocol_name(self.requested),
        "request_flags": req.negotiation.flags if req and req.negotiation else None,
        "correlation_id": req.correlation_id.hex() if req and req.correlation_id else None,
        "request_error": self.request_error,
        "reply_kind": str(self.reply_kind) if self.reply_kind else None,
        "reply_error": self.reply_error,
        "selected": self.selected,
        "selected_name": None if self.selected is None else protocol_name(self.selected),
        "response_flags": neg.flags if isinstance(neg, NegotiationResponse) else None,
        "failure": neg.code_name if isinstance(neg, NegotiationFailure) else None,
        "legacy_confirm": isinstance(self.tpdu, ConnectionConfirm) and neg is None,
        "client_info": None if cd is None else {
            "client_name": core.client_name if core else None,
            "client_build": core.client_build if core else None,
            "client_build_name": client_build_name(core.client_build) if core else None,
            "desktop_width": core.desktop_width if core else None,
            "desktop_height": core.desktop_height if core else None,
            "color_depth": core.requested_color_depth if core else None,
            "keyboard_layout": core.keyboard_layout if core else None,
            "keyboard_layout_name": keyboard_layout_name(core.keyboard_layout) if core else None,
            "client_dig_product_id": core.client_dig_product_id if core else None,
            "version": core.version if core else None,
            "version_name": gcc.version_name(core.version) if core else None,
            "early_capability_flags": core.early_capability_flags if core else None,
            "early_capabilities": gcc.early_capability_names(core.early_capability_flags or 0)
            if core else None,
            "channels": [n for n, _ in cd.channels] if cd.channels is not None else None,
            "encryption_methods": gcc.method_names(cd.encryption_methods or 0),
        },
        "client_data_error": self.client_data_error,
        "server_info": None if sd is None else {
            "rdp_version": sd.core.version_name if sd.core else None,
            "encryption_method": sec.method_name if sec else None,
            "encryption_level": sec.level_name if sec else None,
            **certificate_facts(sec),
        },
        "mcs_result": self.connect_response.result_name if self.connect_response else None,
        "mcs_error": self.mcs_error,
        "tls": None if not (self.tls_client_hello or self.tls_version or self.tls_alert) else {
            "sni": self.sni,
            "version": self.tls_version,
            "cipher": self.tls_cipher,
            "alert": self.tls_alert,
            "alert_name": tlsrec.alert_name(self.tls_alert_code[1])
            if self.tls_alert_code else None,
            "alert_level": self.tls_alert_code[0] if self.tls_alert_code else None,
            "alert_description": self.tls_alert_code[1] if self.tls_alert_code else None,
            "key_exchange": self.tls_key_exchange,
            "certificates": len(self.certificates),
            "public_exponent": leaf_exponent(self.certificates[0])
            if self.certificates else None,
            "certificate_errors": [
                {k: v for k, v in bad.items()} for bad in self.certificate_errors
            ],
        },
        "udp": None if self.transport != "udp" else {
            "syn_count": self.udp_syn_count,
            "syn": self.udp_syn.to_dict() if self.udp_syn else None,
            "syn_ack": self.udp_syn_ack.to_dict() if self.udp_syn_ack else None,
        },
        "timing_ms": {
            k: round((self.timing[k] - t0) * 1000, 3) for k in TIMING_KEYS if k in self.timing
        },
        "gaps": [{"direction": d, "offset": o, "length": n} for d, o, n in self.gaps],
        "packets": {"client": self.packets[0], "server": self.packets[1]},
        "bytes": {"client": self.bytes[0], "server": self.bytes[1]},
        "notes": list(self.notes),
        "error": self.error,
        "tcp_handshake": self.handshake or None,
        "no_request": self.no_request,
        "start_missed": self.start_missed,
        "not_rdp": self.not_rdp,
        "tunnel": self.tunnel,
    }  # fmt: skip
