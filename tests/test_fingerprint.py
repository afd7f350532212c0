"""Naming the service that answers instead of RDP."""

from __future__ import annotations

import pytest

from rdprobe.analysis.fingerprint import identify, looks_like_tls, preview


@pytest.mark.parametrize(
    ("data", "name", "detail_part"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\n\r\n", "HTTP", "nginx/1.22.1"),
        (b"HTTP/1.0 200 OK\r\n\r\n", "HTTP", "200 OK"),
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH", "OpenSSH_9.2p1"),
        (b"220 mail.example.test ESMTP Postfix\r\n", "SMTP", "ESMTP"),
        (b"220 (vsFTPd 3.0.3)\r\n", "FTP", "vsFTPd"),
        (b"220 welcome\r\n", "SMTP or FTP", "welcome"),
        (b"+OK POP3 ready\r\n", "POP3", "POP3 ready"),
        (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", "IMAP", "IMAP4rev1"),
        (b"RFB 003.008\n", "VNC", "003.008"),
        (bytes.fromhex("15030100020228"), "TLS", "alert"),
        (bytes.fromhex("160303004a020000"), "TLS", "handshake"),
        (b"\x00\x01\x02garbage", "unknown", None),
    ],
)
def test_identify(data, name, detail_part):
    guess = identify(data)
    assert guess.name == name
    if detail_part is None:
        assert guess.detail is None
    else:
        assert detail_part in guess.detail


def test_preview_is_safe_for_terminals():
    shown = preview(b"\x1b[31mred\x07\r\n\\" + b"A" * 100, limit=20)
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.startswith("\\x1b[31mred\\x07\\r\\n\\x5c")
    assert shown.endswith("...")


def test_tls_detection_needs_a_plausible_header():
    assert not looks_like_tls(b"\x16\x03\x01")
    assert not looks_like_tls(b"\x16\x02\x01\x00\x10")
    assert not looks_like_tls(b"\x16\x03\x01\xff\xff")
