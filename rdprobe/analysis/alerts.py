"""Which finding a TLS alert that ends the handshake gets: one per class of alert (RFC 8446 §6,
RFC 5246 §7.2), so the advice fits it: the TLS versions enabled, the cipher suites, the client's
certificate, the server's own failure, malformed input, the name asked for (SNI)."""

from __future__ import annotations

from typing import Any

from rdprobe.analysis.facts import TlsFacts, alert_text
from rdprobe.analysis.findings import Finding, finding
from rdprobe.protocol import tlsrec

#: The finding for each class of TLS alert a server ends the handshake with (RFC 8446 §6):
#: versions, cipher suites, the client's certificate, the server's own failure, malformed input.
ALERT_FINDINGS: dict[str, str] = {
    "protocol_version": "tls.alert_protocol_version",
    "inappropriate_fallback": "tls.alert_protocol_version",
    "handshake_failure": "tls.alert_cipher",
    "insufficient_security": "tls.alert_cipher",
    **dict.fromkeys(
        (
            "no_certificate", "bad_certificate", "unsupported_certificate",
            "certificate_revoked", "certificate_expired", "certificate_unknown", "unknown_ca",
            "access_denied", "certificate_unobtainable", "bad_certificate_status_response",
            "bad_certificate_hash_value", "certificate_required",
        ),
        "tls.alert_certificate",
    ),
    "internal_error": "tls.alert_internal_error",
    **dict.fromkeys(
        (
            "unexpected_message", "bad_record_mac", "decryption_failed", "record_overflow",
            "decompression_failure", "illegal_parameter", "decode_error", "decrypt_error",
            "missing_extension", "unsupported_extension",
        ),
        "tls.alert_decode_error",
    ),
    "unrecognized_name": "tls.alert_unrecognized_name",
}  # fmt: skip


def alert_finding(alert: tlsrec.Alert, tls: TlsFacts, where: dict[str, Any]) -> Finding:
    """The finding for the alert that ended the handshake (``tls.alert_other`` when unnamed)."""
    return finding(
        ALERT_FINDINGS.get(alert.name, "tls.alert_other"),
        alert=alert_text(alert),
        alert_name=alert.name,
        alert_description=alert.description,
        alert_level=alert.level,
        error=tls.error,
        target=tls.server_name,
        **where,
    )
