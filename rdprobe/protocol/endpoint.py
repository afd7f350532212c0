"""Where an RDP listener is: the well-known port and the one way an endpoint is written.

MS-RDPBCGR 1.3.1.1: TCP (and, MS-RDPEUDP, UDP) port 3389 by default. An endpoint is written
``host:port``, an IPv6 address in brackets (``[2001:db8::1]:3389``, RFC 3986 §3.2.2).
"""

from __future__ import annotations

RDP_PORT = 3389


def format_endpoint(host: str, port: int) -> str:
    """``host:port``, or ``[v6]:port`` for an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
