"""Emulator behaviours: sans-IO answers of one listener to what the client sent.

A behaviour maps a parsed X.224 Connection Request, a TPKT PDU, raw bytes or a datagram to a
``Reply`` — bytes to send and what the connection does next (``Then``). ``rdprobe.emulate.server``
does the I/O; ``rdprobe.emulate.profiles`` names behaviours fed with recorded bytes.

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
from dataclasses import dataclass, replace

from rdprobe.emulate import vectors
from rdprobe.emulate.credssp_server import CredSspAcceptor, RecordedChallenge
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

    def credssp_session(
        self, req: x224.ConnectionRequest | None, certificate_der: bytes
    ) -> CredSspAcceptor | None:
        """A CredSSP acceptor for a connection that selected HYBRID(_EX), when emulated."""
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
    #: the TLS versions served, lowest and highest ("TLSv1" .. "TLSv1.3"); None: the server's
    #: default context (TLS 1.2 and 1.3)
    tls_versions: tuple[str, str] | None = None
    #: the server's recorded TSRequest carrying its NTLM CHALLENGE: the answer, inside TLS, to
    #: the client's first TSRequest on a connection that selected HYBRID(_EX); None: no CredSSP
    nla_challenge: bytes | None = None
    #: what answers the PDUs that follow inside TLS once ``tls_mcs_cr`` is sent (Attach User,
    #: Channel Joins, Client Info: rdprobe.emulate.session_host, spec-built, as no capture goes
    #: further); None: the connection is held after the MCS Connect Response, as a recording
    #: that ends there would
    after_tls_mcs: Behaviour | None = None

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
            return Reply(self.tls_mcs_cr, Then.HOLD if self.after_tls_mcs is None else Then.READ)
        if self.after_tls_mcs is not None:
            return self.after_tls_mcs.data(pdu)
        return CLOSE

    def credssp_session(
        self, req: x224.ConnectionRequest | None, certificate_der: bytes
    ) -> CredSspAcceptor | None:
        if self.nla_challenge is None or req is None or req.negotiation is None:
            return None
        neg = self.policy.decide(req.negotiation.requested)
        if not isinstance(neg, NegotiationResponse) or not neg.selected & (P.HYBRID | P.HYBRID_EX):
            return None
        return RecordedChallenge(self.nla_challenge)


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

    def credssp_session(
        self, req: x224.ConnectionRequest | None, certificate_der: bytes
    ) -> CredSspAcceptor | None:
        return self.inner.credssp_session(req, certificate_der)

    @property
    def tls(self) -> bool:  # type: ignore[override]
        return self.inner.tls

    @property
    def tls_versions(self) -> tuple[str, str] | None:
        return getattr(self.inner, "tls_versions", None)


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
    #: a reset instead of the answer to a request without RDP_NEG_REQ (the others answered)
    RESET_LEGACY = "reset-legacy"


@dataclass(frozen=True)
class Mangled(Wrapper):
    """``inner``'s answer to the Connection Request, delivered wrongly."""

    how: Mangle = Mangle.DRIP
    interval: float = 0.4

    def request(self, req: x224.ConnectionRequest) -> Reply:
        reply = self.inner.request(req)
        if self.how is Mangle.RESET_LEGACY:
            return Reply(then=Then.RESET) if req.negotiation is None else reply
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
class IsoTransport(Behaviour):
    """An ISO transport service (RFC 1006 ISO-on-TCP: S7comm, MMS) that is not RDP.

    It confirms any Connection Request with its own ISO 8073 parameters (13.4: TPDU size, TSAPs)
    and no RDP negotiation data, then answers the first Data TPDU with ``answer`` and closes.
    """

    confirm: bytes = b""
    answer: bytes = b""

    def request(self, req: x224.ConnectionRequest) -> Reply:
        return Reply(self.confirm, Then.READ)

    def data(self, pdu: bytes) -> Reply:
        return Reply(self.answer, Then.CLOSE)


@dataclass(frozen=True)
class RdpUdp(Behaviour):
    """MS-RDPEUDP listener: answers a SYN with the recorded SYN+ACK (3.1.5.1.1)."""

    synack: bytes = b""

    def datagram(self, data: bytes) -> bytes | None:
        return vectors.udp_synack(data, self.synack)
