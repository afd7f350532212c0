"""Emulator profiles: how one listener answers, replaying bytes recorded from real servers.

A profile is a name, a one-line description (which server or misbehaviour, and the vector its
bytes come from) and a behaviour. Behaviours are sans-IO: they map what the client sent (a parsed
X.224 Connection Request, a TPKT PDU, raw bytes, a datagram) to a ``Reply`` — bytes to send and
what the connection does next. ``rdprobe.emulate.server`` does the I/O.

Negotiation follows MS-RDPBCGR 3.3.5.3.1 (processing the Connection Request) and 3.3.5.3.2
(the Connection Confirm): ``rdpNegData`` is left empty when the client sent no RDP_NEG_REQ.
Choice made here: a server that does not allow Standard RDP Security answers such a legacy request
with the RDP_NEG_FAILURE it would send to a PROTOCOL_RDP request (SSL_REQUIRED_BY_SERVER, or
HYBRID_REQUIRED_BY_SERVER when NLA is required) and closes. The specification leaves such a
server nothing to say but to drop the connection; the explicit failure lets a prober name the
setting, and no recording shows what Windows does.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace

from rdprobe.emulate import vectors
from rdprobe.emulate.vectors import (
    HYBRID_EX,
    NEG_FAILURE,
    PROPRIETARY,
    RDPEUDP,
    W2000,
    W2003,
    W2008_TLS,
    W2008_X509,
    W2012_TLS,
    WIN10_NLA,
    X509,
    XRDP,
)
from rdprobe.protocol import x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.x224 import FailureCode, NegotiationFailure, NegotiationResponse
from rdprobe.protocol.x224 import Protocol as P

#: X.224 DT carrying an MCS Disconnect Provider Ultimatum (T.125), as xrdp sends it.
MCS_DPU_ULTIMATUM = bytes.fromhex("0300000902f0802180")
#: T.125 Connect-Initial: BER application tag 101.
_MCS_CONNECT_INITIAL = b"\x7f\x65"
_EXTERNAL = P.SSL | P.HYBRID | P.RDSTLS | P.HYBRID_EX | P.RDSAAD


class Then(enum.Enum):
    """What the connection does after a reply is sent."""

    READ = "read"  # read the client's next input and let the behaviour answer it
    HOLD = "hold"  # absorb input, answer nothing, until the client closes or idles out
    CLOSE = "close"  # orderly close (FIN)
    RESET = "reset"  # abortive close (RST: SO_LINGER 0)
    TLS = "tls"  # the client's next bytes are TLS: served when the behaviour has TLS, else close


@dataclass(frozen=True)
class Reply:
    data: bytes = b""
    then: Then = Then.READ
    #: seconds between bytes; 0 sends everything at once
    drip: float = 0.0
    #: before acting, wait up to this many seconds for client bytes (read and discarded)
    swallow: float = 0.0


CLOSE = Reply(then=Then.CLOSE)
HOLD = Reply(then=Then.HOLD)


def is_connect_initial(pdu: bytes) -> bool:
    """True when ``pdu`` is an X.224 DT carrying an MCS Connect-Initial (MS-RDPBCGR 2.2.1.3)."""
    try:
        return x224.parse_data(pdu).startswith(_MCS_CONNECT_INITIAL)
    except ProtocolError:
        return False


# -- negotiation policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NegotiationPolicy:
    """A Windows listener's security settings, as far as the Connection Confirm shows them."""

    #: external security protocols the server offers (0: security layer "RDP")
    external: int = 0
    #: Standard RDP Security accepted (security layer "RDP" or "Negotiate")
    standard_rdp: bool = True
    nla_required: bool = False
    #: RDP_NEG_RSP flags when an external protocol is selected
    flags: int = 0
    #: RDP_NEG_RSP flags when PROTOCOL_RDP is selected (0x00 in every recording that shows one)
    rdp_flags: int = 0
    #: no usable TLS certificate: SSL_CERT_NOT_ON_SERVER to requests for an external protocol
    cert_missing: bool = False
    #: pre-2003-SP1 server: ignores RDP_NEG_REQ, every confirm carries no negotiation data
    legacy: bool = False

    def decide(self, requested: int | None) -> NegotiationResponse | NegotiationFailure | None:
        """The rdpNegData for a request; None means a confirm without negotiation data."""
        if self.legacy:
            return None
        if requested is None:
            return None if self.standard_rdp else self._refuse_standard()
        if not self.external:
            if requested & _EXTERNAL:
                return NegotiationFailure(FailureCode.SSL_NOT_ALLOWED_BY_SERVER)
            return NegotiationResponse(P.RDP, self.rdp_flags)
        if self.cert_missing and requested & (P.SSL | P.HYBRID | P.HYBRID_EX):
            return NegotiationFailure(FailureCode.SSL_CERT_NOT_ON_SERVER)
        for proto in (P.HYBRID_EX, P.HYBRID, P.SSL):
            if requested & proto and self.external & proto:
                if self.nla_required and proto == P.SSL:
                    break
                return NegotiationResponse(proto, self.flags)
        if self.nla_required or not self.standard_rdp:
            return self._refuse_standard()
        return NegotiationResponse(P.RDP, self.rdp_flags)

    def _refuse_standard(self) -> NegotiationFailure:
        if self.nla_required:
            return NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER)
        return NegotiationFailure(FailureCode.SSL_REQUIRED_BY_SERVER)


# -- behaviours -----------------------------------------------------------------------------------


class Behaviour:
    """Default: read TPKT, answer nothing sensible, close."""

    #: frame client input as TPKT; False hands raw bytes to ``raw``
    tpkt: bool = True
    #: serve TLS when a reply says Then.TLS
    tls: bool = False

    def accepted(self, number: int, active: int) -> Reply | None:
        """On accept (``number`` counts connections from 1, ``active`` includes this one)."""
        return None

    def request(self, req: x224.ConnectionRequest) -> Reply:
        return CLOSE

    def data(self, pdu: bytes) -> Reply:
        """A TPKT PDU after the Connection Request (in clear)."""
        return CLOSE

    def tls_data(self, pdu: bytes) -> Reply:
        """A TPKT PDU received inside TLS."""
        return CLOSE

    def raw(self, data: bytes) -> Reply:
        """Input that is not TPKT (or any input when ``tpkt`` is False)."""
        return CLOSE

    def datagram(self, data: bytes) -> bytes | None:
        return None


@dataclass(frozen=True)
class Negotiator(Behaviour):
    """A Windows-like listener: policy-driven Connection Confirm, then recorded MCS answers."""

    policy: NegotiationPolicy
    #: MCS Connect Response served in clear after Standard RDP Security was agreed
    mcs_cr: bytes | None = None
    #: MCS Connect Response served inside TLS (requires ``tls``)
    tls_mcs_cr: bytes | None = None
    tls: bool = False
    src_ref: int = x224.WINDOWS_SRC_REF
    #: xrdp: requestedProtocols above 0xB get an MCS Disconnect Provider Ultimatum
    ultimatum_above: int | None = None

    def request(self, req: x224.ConnectionRequest) -> Reply:
        requested = req.negotiation.requested if req.negotiation else None
        if self.ultimatum_above is not None and (requested or 0) > self.ultimatum_above:
            return Reply(MCS_DPU_ULTIMATUM, Then.CLOSE)
        neg = self.policy.decide(requested)
        confirm = x224.build_confirm(neg, src_ref=self.src_ref)
        if isinstance(neg, NegotiationFailure):
            return Reply(confirm, Then.CLOSE)
        if neg is None or neg.selected == P.RDP:
            return Reply(confirm, Then.READ)
        return Reply(confirm, Then.TLS)

    def data(self, pdu: bytes) -> Reply:
        if self.mcs_cr is not None and is_connect_initial(pdu):
            return Reply(self.mcs_cr, Then.HOLD)
        return CLOSE

    def tls_data(self, pdu: bytes) -> Reply:
        if self.tls_mcs_cr is not None and is_connect_initial(pdu):
            return Reply(self.tls_mcs_cr, Then.HOLD)
        return CLOSE


@dataclass(frozen=True)
class Wrapper(Behaviour):
    """Delegates everything to ``inner``; subclasses change one step."""

    inner: Behaviour

    def accepted(self, number: int, active: int) -> Reply | None:
        return self.inner.accepted(number, active)

    def request(self, req: x224.ConnectionRequest) -> Reply:
        return self.inner.request(req)

    def data(self, pdu: bytes) -> Reply:
        return self.inner.data(pdu)

    def tls_data(self, pdu: bytes) -> Reply:
        return self.inner.tls_data(pdu)

    @property
    def tls(self) -> bool:  # type: ignore[override]
        return self.inner.tls


@dataclass(frozen=True)
class Gate(Wrapper):
    """Resets some connections at accept, serves the others with ``inner``."""

    #: reset connections beyond this many at once (a listener at its connection limit)
    max_active: int | None = None
    #: reset every n-th connection (a flapping listener)
    reset_every: int | None = None

    def accepted(self, number: int, active: int) -> Reply | None:
        over = self.max_active is not None and active > self.max_active
        if over or (self.reset_every and number % self.reset_every == 0):
            return Reply(then=Then.RESET, swallow=1.0)
        return self.inner.accepted(number, active)


class Mangle(enum.Enum):
    DRIP = "drip"
    TRUNCATE = "truncate"
    RESET_AFTER = "reset-after"


@dataclass(frozen=True)
class Mangled(Wrapper):
    """``inner``'s answer to the Connection Request, delivered wrongly."""

    how: Mangle = Mangle.DRIP
    interval: float = 0.4

    def request(self, req: x224.ConnectionRequest) -> Reply:
        reply = self.inner.request(req)
        if self.how is Mangle.DRIP:
            return replace(reply, drip=self.interval)
        if self.how is Mangle.TRUNCATE:
            return Reply(reply.data[: len(reply.data) // 2], Then.CLOSE)
        return Reply(reply.data, Then.RESET)


@dataclass(frozen=True)
class Refuse(Behaviour):
    """Accepts, takes the client's first bytes (or waits a moment), then closes or resets."""

    then: Then = Then.RESET

    def accepted(self, number: int, active: int) -> Reply | None:
        return Reply(then=self.then, swallow=2.0)


@dataclass(frozen=True)
class Fixed(Behaviour):
    """Answers any Connection Request (and any non-TPKT input) with the same bytes."""

    answer: bytes
    then: Then = Then.CLOSE

    def request(self, req: x224.ConnectionRequest) -> Reply:
        return Reply(self.answer, self.then)

    def raw(self, data: bytes) -> Reply:
        return Reply(self.answer, self.then)


@dataclass(frozen=True)
class Banner(Behaviour):
    """Another service on the port: an optional greeting first, one answer, then close."""

    greeting: bytes = b""
    answer: bytes = b""
    tpkt: bool = False

    def accepted(self, number: int, active: int) -> Reply | None:
        return Reply(self.greeting) if self.greeting else None

    def raw(self, data: bytes) -> Reply:
        return Reply(self.answer, Then.CLOSE)


@dataclass(frozen=True)
class TlsDirect(Behaviour):
    """A TLS server on the port: whatever OpenSSL answers to the client's first bytes."""

    tpkt: bool = False
    tls: bool = True

    def accepted(self, number: int, active: int) -> Reply | None:
        return Reply(then=Then.TLS)

    def tls_data(self, pdu: bytes) -> Reply:
        return HOLD


@dataclass(frozen=True)
class RdpUdp(Behaviour):
    """MS-RDPEUDP listener: answers a SYN with the recorded SYN+ACK (3.1.5.1.1)."""

    synack: bytes = b""

    def datagram(self, data: bytes) -> bytes | None:
        return vectors.udp_synack(data, self.synack)


# -- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    behaviour: Behaviour
    #: ids of the packaged vectors whose bytes this profile serves
    vectors: tuple[str, ...] = ()
    transport: str = "tcp"


def garbage(seed: int = 3389, size: int = 48) -> bytes:
    """Deterministic random bytes that cannot start a TPKT PDU."""
    data = random.Random(seed).randbytes(size)
    return data if data[0] != 0x03 else b"\xff" + data[1:]


def _v(vector_id: str, what: str) -> bytes:
    return vectors.pdu(vector_id, what)


_LEGACY = NegotiationPolicy(legacy=True)
_STANDARD_ONLY = NegotiationPolicy(external=0, standard_rdp=True)
_W2012 = NegotiationPolicy(
    external=P.SSL | P.HYBRID | P.HYBRID_EX, standard_rdp=True, flags=0x0F, rdp_flags=0x00
)


_HTTP_BODY = b"<h1>Bad Request (Invalid Verb)</h1>"
_HTTP_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=us-ascii\r\n"
    b"Server: Microsoft-IIS/10.0\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_HTTP_BODY)).encode() + b"\r\n\r\n" + _HTTP_BODY
)
#: (name, what answers, greeting sent first, answer to the client's bytes)
_BANNERS = (
    ("http", "an HTTP server (IIS): 400 Bad Request with its Server header", b"", _HTTP_400),
    ("ssh", "an SSH server: banner first", b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n",
     b"Invalid SSH identification string.\r\n"),
    ("smtp", "an SMTP server: 220 greeting first", b"220 mail.example.test ESMTP Postfix\r\n",
     b"500 5.5.2 Error: bad syntax\r\n"),
    ("ftp", "an FTP server (IIS): 220 greeting first", b"220 Microsoft FTP Service\r\n",
     b"500 Command not understood.\r\n"),
    ("pop3", "a POP3 server: +OK greeting first", b"+OK POP3 server ready\r\n",
     b"-ERR Unknown command.\r\n"),
    ("imap", "an IMAP server: * OK greeting first", b"* OK IMAP4rev1 Service Ready\r\n",
     b"* BAD Invalid tag\r\n"),
    ("vnc", "a VNC server: RFB 003.008 version first", b"RFB 003.008\n", b""),
)  # fmt: skip


def _profiles() -> list[Profile]:
    prop = _v(PROPRIETARY, "mcs_cr")
    w2012 = Negotiator(_W2012, mcs_cr=prop)
    w12 = (W2012_TLS, PROPRIETARY)
    nla = NegotiationPolicy(P.SSL | P.HYBRID | P.HYBRID_EX, False, True, flags=0x1F)
    xrdp = NegotiationPolicy(external=P.SSL, flags=0x01, rdp_flags=0x01)
    table: list[tuple[str, str, Behaviour, tuple[str, ...]]] = [
        ("win2003-legacy", "Windows Server 2003 before SP1: 11-byte confirm to every request,"
         f" then its MCS Connect Response (proprietary 512-bit certificate) [{W2003}]",
         Negotiator(_LEGACY, mcs_cr=_v(W2003, "mcs_cr")), (W2003,)),
        ("win2000-legacy", "Windows 2000 Server: 11-byte confirm to every request, then its MCS"
         f" Connect Response (proprietary 512-bit certificate, 40-bit) [{W2000}]",
         Negotiator(_LEGACY, mcs_cr=_v(W2000, "mcs_cr")), (W2000,)),
        ("win2008-x509", "Windows Server 2008 (10.10.47.35), security layer Negotiate: TLS with"
         " flags 0x09; legacy and RDP requests get Standard RDP Security with an X.509 licensing"
         f" chain [{W2008_TLS}, {W2008_X509}; HYBRID per MS-RDPBCGR, not recorded]",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, flags=0x09), _v(W2008_X509, "mcs_cr")),
         (W2008_TLS, W2008_X509)),
        ("win2008r2-tls", "Windows Server 2008 R2, security layer SSL (TLS required): SSL or"
         f" HYBRID with flags 0x09 [{W2008_TLS}]; RDP-only and legacy requests get"
         " SSL_REQUIRED_BY_SERVER (MS-RDPBCGR 2.2.1.2.2, not recorded)",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, False, flags=0x09)), (W2008_TLS,)),
        ("win2012-negotiate", "Windows Server 2012, security layer Negotiate: SSL with flags 0x0f"
         f" [{W2012_TLS}]; HYBRID/HYBRID_EX when offered (MS-RDPBCGR), RDP with flags 0x00 or a"
         f" legacy 11-byte confirm, then a Standard RDP MCS answer borrowed from [{PROPRIETARY}]",
         w2012, w12),
        ("win10-nla", f"Windows 10 / Server 2019, NLA required: HYBRID_EX [{HYBRID_EX}] or"
         f" HYBRID [{WIN10_NLA}] with flags 0x1f; RDP, SSL and legacy requests get"
         " HYBRID_REQUIRED_BY_SERVER (MS-RDPBCGR 2.2.1.2.2, no verified capture)",
         Negotiator(nla), (HYBRID_EX, WIN10_NLA)),
        ("rdp-only", "Windows, security layer RDP (10.226.24.52): SSL_NOT_ALLOWED_BY_SERVER"
         f" [{NEG_FAILURE}], RDP selected with flags 0x00, then its MCS Connect Response"
         f" [{PROPRIETARY}]", Negotiator(_STANDARD_ONLY, mcs_cr=prop), (NEG_FAILURE, PROPRIETARY)),
        ("rdp-proprietary", "Windows, Standard RDP Security with a proprietary certificate"
         " (512-bit, 128-bit, level High): the same server and answers as rdp-only"
         f" [{PROPRIETARY}, {NEG_FAILURE}]", Negotiator(_STANDARD_ONLY, mcs_cr=prop),
         (PROPRIETARY, NEG_FAILURE)),
        ("rdp-x509", "Windows, Standard RDP Security with a temporary X.509 chain: RDP selected"
         f" with flags 0x00, then its MCS Connect Response [{X509}]; SSL refused as in"
         f" [{NEG_FAILURE}]", Negotiator(_STANDARD_ONLY, mcs_cr=_v(X509, "mcs_cr")),
         (X509, NEG_FAILURE)),
        ("corrupt-certificate", "rdp-proprietary with the first byte of the proprietary"
         " certificate's signature inverted: the 'because of a security error' case"
         f" [{PROPRIETARY}, modified]",
         Negotiator(_STANDARD_ONLY, mcs_cr=vectors.corrupt_signature(prop)), (PROPRIETARY,)),
        ("ssl-cert-missing", "Windows, security layer Negotiate without a usable certificate:"
         " SSL_CERT_NOT_ON_SERVER to TLS/NLA requests (MS-RDPBCGR 2.2.1.2.2, not recorded), RDP"
         f" selected with flags 0x00, MCS answer borrowed from [{PROPRIETARY}]",
         Negotiator(NegotiationPolicy(P.SSL | P.HYBRID, cert_missing=True), mcs_cr=prop),
         (PROPRIETARY,)),
        ("win-tls-selfsigned", "win2012-negotiate really serving TLS with a self-signed"
         f" certificate made at start, then its MCS Connect Response inside TLS [{W2012_TLS}]",
         Negotiator(_W2012, prop, _v(W2012_TLS, "mcs_cr"), tls=True), w12),
        ("xrdp-rdsaad", "xrdp 0.9.21 (not Windows), security layer negotiate: SSL when offered"
         " else RDP, flags 0x01; requestedProtocols above 0xB get an MCS Disconnect Provider"
         f" Ultimatum, then close [{XRDP}, measured]",
         Negotiator(xrdp, ultimatum_above=0xB), (XRDP,)),
        ("accept-reset", "accepts, reads the request, then resets (RST) before answering:"
         " connection limit, IP restriction", Refuse(Then.RESET), ()),
        ("accept-close", "accepts, reads the request, then closes (FIN) before answering",
         Refuse(Then.CLOSE), ()),
        ("silent", "accepts and reads, never answers; closes when the client does or after"
         " 30 s idle", Fixed(b"", Then.HOLD), ()),
        ("drip", "win2012-negotiate's confirm sent one byte every 0.4 s",
         Mangled(w2012, Mangle.DRIP), w12),
        ("oversized", "a TPKT header announcing 65535 bytes followed by 15 bytes, then silence",
         Fixed(bytes.fromhex("0300ffff0ed000001234000200080001000000"), Then.HOLD), ()),
        ("truncated", "the first half of win2012-negotiate's confirm, then close",
         Mangled(w2012, Mangle.TRUNCATE), w12),
        ("garbage", "48 random bytes that are not TPKT, then close", Fixed(garbage()), ()),
        ("reset-after-confirm", "win2012-negotiate's confirm, then a reset (RST)",
         Mangled(w2012, Mangle.RESET_AFTER), w12),
        ("busy", "win2012-negotiate for 2 connections at once; further concurrent ones are reset",
         Gate(w2012, max_active=2), w12),
        ("flapping", "win2012-negotiate, except every 3rd connection is reset",
         Gate(w2012, reset_every=3), w12),
    ]  # fmt: skip
    out = [Profile(name, text, beh, vids) for name, text, beh, vids in table]
    out += [Profile(n, f"{w} on the port", Banner(g, a)) for n, w, g, a in _BANNERS]
    out.append(Profile("tls-direct", "a TLS server on the port (self-signed certificate):"
                       " OpenSSL's answer to X.224 bytes", TlsDirect()))  # fmt: skip
    out.append(Profile("rdpudp", "RDP over UDP (MS-RDPEUDP): the recorded SYN+ACK addressed"
                       f" to the client's SYN [{RDPEUDP}]", RdpUdp(_v(RDPEUDP, "rdpudp_synack")),
                       (RDPEUDP,), transport="udp"))  # fmt: skip
    return out


PROFILES: dict[str, Profile] = {p.name: p for p in _profiles()}


def get(name: str) -> Profile:
    """The profile called ``name``; KeyError listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None
