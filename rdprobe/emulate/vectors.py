"""Recorded server bytes the emulator replays, loaded from the packaged ``windows.json``.

Each vector keeps its provenance (id, source, server) from ``shared/vectors/windows-handshakes.json``;
hex strings are whole TPKT PDUs, or whole UDP payloads for ``rdpudp_*``. Helpers here derive the
few byte strings no server recorded: a proprietary certificate with a flipped signature byte
(MS-RDPBCGR 2.2.1.4.3.1.1) and an RDP-UDP SYN+ACK answering a given SYN (MS-RDPEUDP 3.1.5.1.1).
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# Ids of the packaged vectors.
W2000 = "redemption-w2000-rdpsec"
W2003 = "redemption-w2003-rdpsec"
W2008_X509 = "redemption-w2008-rdpsec-x509-a"
W2008_TLS = "redemption-w2008-tls-10.10.47.35"
W2012_TLS = "redemption-w2012-tls-RED-TEST-W2K12"
WIN10_NLA = "redemption-win10-nla-ntlm-WIN10CGR"
W2012R2_NTLM = "redemption-ntlm-challenge-WINKDC2012"
HYBRID_EX = "zeek-hybrid-ex-CLK-456040-D"
NEG_FAILURE = "zeek-rdp-neg-failure-SSL_NOT_ALLOWED_BY_SERVER"
PROPRIETARY = "zeek-rdp-proprietary-cert"
X509 = "zeek-rdp-x509-temporary-chain"
RDPEUDP = "zeek-rdpeudp-handshake-success"
XRDP = "xrdp-0.9.21-negotiate-measured"

# MS-RDPEUDP 2.2.2.1 / 2.2.2.5 / 2.2.2.14 offsets (all fields big-endian).
UDP_FLAG_SYN = 0x0001
UDP_FLAG_ACK = 0x0004
UDP_FLAG_CORRELATION_ID = 0x0800
UDP_FLAG_SYNEX = 0x1000
_FEC_LEN = 8  # snSourceAck u32, uReceiveWindowSize u16, uFlags u16
_SYNDATA_LEN = 8  # snInitialSequenceNumber u32, uUpStreamMtu u16, uDownStreamMtu u16
_CORRELATION_LEN = 32  # uCorrelationId 16 + uReserved 16

# MS-RDPBCGR 2.2.1.4.3.1.1: RSA1 public key blob magic, then BB_RSA_SIGNATURE_BLOB header.
_RSA1 = b"RSA1"
_SIG_BLOB_HEADER = struct.pack("<HH", 0x0008, 72)


@dataclass(frozen=True)
class Vector:
    """One recorded exchange: where it came from and the server's PDUs by name."""

    id: str
    source: str
    server: str
    confidence: str
    pdus: dict[str, bytes] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def pdu(self, what: str) -> bytes:
        try:
            return self.pdus[what]
        except KeyError:
            raise KeyError(f"vector {self.id} has no {what!r} (has {sorted(self.pdus)})") from None


@functools.cache
def all_vectors() -> dict[str, Vector]:
    """Every packaged vector by id (read once)."""
    text = resources.files("rdprobe.emulate").joinpath("windows.json").read_text("utf-8")
    out: dict[str, Vector] = {}
    for raw in json.loads(text)["vectors"]:
        known = {"id", "source", "server", "confidence", "pdus"}
        out[raw["id"]] = Vector(
            id=raw["id"],
            source=raw["source"],
            server=raw["server"],
            confidence=raw["confidence"],
            pdus={k: bytes.fromhex(v) for k, v in raw["pdus"].items()},
            extra={k: v for k, v in raw.items() if k not in known},
        )
    return out


def vector(vector_id: str) -> Vector:
    try:
        return all_vectors()[vector_id]
    except KeyError:
        raise KeyError(f"no packaged vector {vector_id!r}") from None


def pdu(vector_id: str, what: str) -> bytes:
    """Shorthand: the recorded bytes ``what`` of vector ``vector_id``."""
    return vector(vector_id).pdu(what)


def signature_offset(mcs_cr: bytes) -> int:
    """Offset of the first SignatureBlob byte of the proprietary certificate in an MCS Connect
    Response (MS-RDPBCGR 2.2.1.4.3.1.1). ValueError when there is none."""
    key = mcs_cr.find(_RSA1)
    if key < 0:
        raise ValueError("no RSA1 public key blob in this MCS Connect Response")
    if key + 16 > len(mcs_cr):
        raise ValueError("truncated RSA1 public key blob")
    keylen = struct.unpack_from("<I", mcs_cr, key + 4)[0]
    header = key + 20 + keylen  # magic, keylen, bitlen, datalen, pubExp, then the modulus
    if mcs_cr[header : header + 4] != _SIG_BLOB_HEADER or header + 4 + 72 > len(mcs_cr):
        raise ValueError("no 72-byte BB_RSA_SIGNATURE_BLOB after the public key")
    return header + 4


def corrupt_signature(mcs_cr: bytes) -> bytes:
    """``mcs_cr`` with the first byte of its proprietary certificate signature inverted."""
    at = signature_offset(mcs_cr)
    return mcs_cr[:at] + bytes((mcs_cr[at] ^ 0xFF,)) + mcs_cr[at + 1 :]


def udp_syn_fields(datagram: bytes) -> tuple[int, int, int] | None:
    """(uFlags, snInitialSequenceNumber, uUdpVer or 0) of an RDP-UDP SYN, None if not a SYN."""
    if len(datagram) < _FEC_LEN + _SYNDATA_LEN:
        return None
    flags = struct.unpack_from(">H", datagram, 6)[0]
    if not flags & UDP_FLAG_SYN or flags & UDP_FLAG_ACK:
        return None
    isn = struct.unpack_from(">I", datagram, _FEC_LEN)[0]
    version = 0
    if flags & UDP_FLAG_SYNEX:
        at = _FEC_LEN + _SYNDATA_LEN + (_CORRELATION_LEN if flags & UDP_FLAG_CORRELATION_ID else 0)
        if len(datagram) >= at + 4:
            version = struct.unpack_from(">H", datagram, at + 2)[0]
    return flags, isn, version


def udp_synack(syn: bytes, recorded: bytes) -> bytes | None:
    """The recorded SYN+ACK re-addressed to ``syn`` (MS-RDPEUDP 3.1.5.1.1), None if not a SYN.

    snSourceAck becomes the client's snInitialSequenceNumber. The recorded reply carries SYNEX
    (version 2); a server echoes SYNEX only when the client sent it, with the lower version.
    The reply's zero padding is cut to the SYN's size, and a SYN shorter than the reply's
    meaningful bytes gets no answer: the emulator never amplifies (MS-RDPEUDP requires the SYN
    to be padded to the MTU anyway).
    """
    fields = udp_syn_fields(syn)
    meaningful = len(recorded.rstrip(b"\x00"))
    if fields is None or len(syn) < meaningful:
        return None
    recorded = recorded[: max(meaningful, min(len(recorded), len(syn)))]
    flags, isn, client_version = fields
    out = bytearray(recorded)
    struct.pack_into(">I", out, 0, isn)
    reply_flags = struct.unpack_from(">H", out, 6)[0]
    synex_at = _FEC_LEN + _SYNDATA_LEN
    if reply_flags & UDP_FLAG_SYNEX:
        if not flags & UDP_FLAG_SYNEX or client_version == 0:
            struct.pack_into(">H", out, 6, reply_flags & ~UDP_FLAG_SYNEX)
            out[synex_at : synex_at + 4] = bytes(4)
        else:
            ours = struct.unpack_from(">H", out, synex_at + 2)[0]
            struct.pack_into(">H", out, synex_at + 2, min(ours, client_version))
    return bytes(out)
