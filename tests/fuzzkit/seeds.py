"""Real bytes to mutate: the recorded Windows handshakes and the Zeek test captures."""

from __future__ import annotations

import functools
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "windows-handshakes.json"
CAPTURES = ROOT / "captures" / "zeek"


@functools.cache
def vector_pdus() -> dict[str, tuple[bytes, ...]]:
    """PDU bytes by kind ("x224_cc", "mcs_cr", "credssp_tsrequest_ntlm_challenge", ...)."""
    out: dict[str, list[bytes]] = {}
    for vector in json.loads(VECTORS.read_text()):
        for pdu in vector["pdus"]:
            out.setdefault(pdu["what"], []).append(bytes.fromhex(pdu["hex"]))
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


def pdus(*kinds: str) -> tuple[bytes, ...]:
    table = vector_pdus()
    return tuple(p for k in kinds for p in table.get(k, ()))


def capture_files() -> tuple[Path, ...]:
    return tuple(sorted(CAPTURES.glob("*.pcap")))


@functools.cache
def tls_certificates() -> tuple[bytes, ...]:
    """DER certificates out of the recorded TLS server flights."""
    from rdprobe.protocol import tlsrec

    out: list[bytes] = []
    for flight in pdus("tls_server_hello_certificate_done_record"):
        try:
            out.extend(tlsrec.parse_server_flight(flight).certificates)
        except ValueError:
            continue
    return tuple(dict.fromkeys(out))


@functools.cache
def udp_payloads() -> tuple[bytes, ...]:
    """RDP-UDP datagrams from the Zeek captures (scapy reads them)."""
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    out: list[bytes] = []
    for path in capture_files():
        if "rdpeudp" not in path.name:
            continue
        for packet in rdpcap(str(path)):
            if UDP in packet and bytes(packet[UDP].payload):
                out.append(bytes(packet[UDP].payload))
    return tuple(dict.fromkeys(out))[:64]
