"""One RDP connection seen in a capture, and its translation into the classifier's observation.

:class:`RdpConnection` holds what the wire showed (MS-RDPBCGR 1.3.1.1 connection sequence): the
X.224 Connection Request / Confirm (2.2.1.1, 2.2.1.2), the MCS Connect Initial / Response with the
GCC client and server data (2.2.1.3, 2.2.1.4) or, after a confirm selecting an external security
protocol, the clear part of the TLS handshake (5.4.5), the timing of each stage and how the
connection ended. :func:`to_observation` turns it into the same
:class:`~rdprobe.analysis.observations.TargetObservation` the live probe builds (one
:class:`~rdprobe.analysis.observations.Attempt`, the typed facts of ``rdprobe.analysis.facts``), so
:func:`~rdprobe.analysis.classify.classify` gives the findings ``check`` gives, judged at the
capture's time. Zeek's rdp.log names for the facts are in :mod:`rdprobe.capture.zeek_names`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rdprobe.analysis.certificate import describe_chain
from rdprobe.analysis.encryption_level import MethodOutcome
from rdprobe.analysis.facts import CertificateUnreadable, McsFacts, TlsFacts, UdpFacts
from rdprobe.analysis.observations import Attempt, ReplyKind, TargetObservation, TcpOutcome
from rdprobe.analysis.session_facts import SessionFacts
from rdprobe.capture.jsonview import certificate_error
from rdprobe.capture.linklayer import format_address
from rdprobe.capture.records import MAX_TIME
from rdprobe.capture.session_decode import decode_session
from rdprobe.protocol import gcc, gcc_client, gcc_server, mcs, rdpudp, tlsrec
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationFailure,
    NegotiationResponse,
    ServerTpdu,
    protocol_name,
)


def capture_time(ts: float) -> datetime:
    """A capture timestamp as an aware datetime; a time no datetime can hold (the reader already
    replaces those, see records.MAX_TIME) is pinned to the nearest end of the range."""
    return datetime.fromtimestamp(min(max(ts, 0.0), MAX_TIME - 1), UTC)


@dataclass
class RdpConnection:
    """What the capture showed of one RDP connection (TCP) or RDP-UDP handshake (``udp``)."""

    transport: str  #: "tcp" or "udp"
    client: bytes
    client_port: int
    server: bytes
    server_port: int
    first_ts: float
    end_ts: float | None = None
    end_reason: str | None = None  #: fin, rst, idle-timeout, capture-end, port-reused
    ended_by: str | None = None  #: "client" / "server" for fin and rst
    request: ConnectionRequest | None = None
    request_error: str | None = None
    reply_kind: ReplyKind | None = None
    reply: bytes = b""
    tpdu: ServerTpdu | None = None
    reply_error: str | None = None
    client_data: gcc_client.ClientData | None = None
    client_data_error: str | None = None
    connect_response: mcs.ConnectResponse | None = None
    ultimatum: mcs.DisconnectProviderUltimatum | None = None
    server_data: gcc_server.ServerData | None = None
    mcs_error: str | None = None
    tls_client_hello: bool = False
    sni: str | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    tls_alert: str | None = None
    certificates: tuple[bytes, ...] = ()
    timing: dict[str, float] = field(default_factory=dict)  #: stage -> capture timestamp
    gaps: list[tuple[str, int, int]] = field(default_factory=list)  #: (direction, offset, len)
    packets: tuple[int, int] = (0, 0)
    bytes: tuple[int, int] = (0, 0)
    server_sent_after_confirm: bool = False
    client_sent_after_request: bool = False
    udp_syn: rdpudp.RdpUdpSyn | None = None
    udp_syn_ack: rdpudp.RdpUdpSyn | None = None
    udp_syn_count: int = 0
    notes: list[str] = field(default_factory=list)
    #: (side "c"/"s", timestamp, TPKT PDU) after the MCS exchange under Standard RDP Security
    session_pdus: list[tuple[str, float, builtins.bytes]] = field(default_factory=list, repr=False)
    session_bytes: int = 0
    #: a fault of rdprobe's while reading this connection (the row says so; the others go on)
    error: str | None = None
    #: the capture starts inside the connection (TLS ClientHello, RDP-UDP without its SYN)
    start_missed: bool = False
    #: what the connection is when it is X.224 but not RDP (ISO-on-TCP: S7comm, MMS ...)
    not_rdp: str | None = None
    #: a SOCKS5 tunnel the RDP connection runs through: protocol, target_host, target_port, reply
    tunnel: dict[str, Any] | None = None
    tls_key_exchange: str | None = None
    tls_alert_code: tuple[int, int] | None = None  #: (level, description)
    #: the TCP handshake completed (SYN+ACK seen) but the client sent no byte
    no_request: bool = False
    handshake: str = ""  #: TCP control packets seen, e.g. "SYN, SYN+ACK, ACK, FIN(client)"
    _cert_errors: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    @property
    def certificate_errors(self) -> list[dict[str, Any]]:
        """Certificates no certificate library could read: position, size, SHA-256, why."""
        if self._cert_errors is None:
            self._cert_errors = [
                bad for i, der in enumerate(self.certificates) if (bad := certificate_error(der, i))
            ]
        return self._cert_errors

    # -- derived facts ------------------------------------------------------------------------

    @property
    def client_address(self) -> str:
        return format_address(self.client)

    @property
    def server_address(self) -> str:
        return format_address(self.server)

    @property
    def requested(self) -> int | None:
        neg = self.request.negotiation if self.request else None
        return neg.requested if neg else None

    @property
    def label(self) -> str:
        if self.request is None:
            return "malformed request" if self.request_error else "no request seen"
        return "no negotiation" if self.requested is None else protocol_name(self.requested)

    @property
    def negotiation(self) -> NegotiationResponse | NegotiationFailure | None:
        return self.tpdu.negotiation if isinstance(self.tpdu, ConnectionConfirm) else None

    @property
    def selected(self) -> int | None:
        """The selected protocol; 0 (RDP) for a legacy confirm without negotiation data."""
        if not isinstance(self.tpdu, ConnectionConfirm):
            return None
        neg = self.tpdu.negotiation
        if isinstance(neg, NegotiationResponse):
            return neg.selected
        return 0 if neg is None else None

    @property
    def started(self) -> datetime:
        return capture_time(self.first_ts)

    def ms(self, a: str, b: str) -> float | None:
        """Milliseconds from stage ``a`` to stage ``b`` (None when either was not seen)."""
        ta, tb = self.timing.get(a), self.timing.get(b)
        return None if ta is None or tb is None else round((tb - ta) * 1000, 3)

    # -- views --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The pcap-specific "connection" object of the JSON output (docs/json-schema.md)."""
        from rdprobe.capture.jsonview import connection_dict

        return connection_dict(self)


# -- the classifier's view ------------------------------------------------------------------------


def to_observation(conn: RdpConnection) -> TargetObservation:
    """The TargetObservation the live probe would have built from this one connection."""
    obs = TargetObservation(
        conn.server_address, conn.server_port, conn.server_address, conn.started
    )
    if conn.transport == "udp":
        obs.udp = _udp_facts(conn)
        return obs
    obs.attempts.append(_attempt(conn))
    obs.mcs = _mcs_facts(conn)
    if conn.tls_version is not None or conn.tls_alert is not None:
        obs.tls = _tls_facts(conn)
    obs.session = _session_facts(conn)
    return obs


def _session_facts(conn: RdpConnection) -> SessionFacts | None:
    """The walk past the MCS exchange as far as it crossed in clear (issue 10)."""
    data = conn.server_data
    sec = data.security if data else None
    if not conn.session_pdus or data is None or sec is None:
        return None
    pdus = sorted(conn.session_pdus, key=lambda p: p[1])
    return decode_session(
        pdus, selected_protocol=conn.selected or 0, encryption_method=sec.encryption_method,
        encryption_level=sec.encryption_level, started=conn.timing.get("syn", conn.first_ts),
        rtt_ms=conn.ms("syn", "synack"),
        io_channel=data.network.io_channel if data.network else None,
    )  # fmt: skip


def server_observation(conns: list[RdpConnection]) -> TargetObservation:
    """All TCP connections to one server as one observation (one Attempt each, no stages).

    Like the live matrix, several requests together tell the security layer: classify() of this
    gives the negotiation findings of ``check`` for that server.
    """
    tcp = sorted((c for c in conns if c.transport == "tcp"), key=lambda c: c.first_ts)
    if not tcp:
        raise ValueError("no TCP connection")
    first = tcp[0]
    obs = TargetObservation(
        first.server_address, first.server_port, first.server_address, first.started
    )
    obs.attempts.extend(_attempt(c) for c in tcp)
    return obs


def _attempt(conn: RdpConnection) -> Attempt:
    connect_ms = conn.ms("syn", "synack")
    if conn.request is None and conn.reply_kind is None:
        if conn.no_request or conn.start_missed:  # the port answered; no request was seen
            return Attempt(conn.label, None, TcpOutcome.CONNECTED, None, connect_ms)
        # a SYN never answered
        outcome = TcpOutcome.REFUSED if conn.ended_by == "server" else TcpOutcome.TIMEOUT
        return Attempt(conn.label, None, outcome, conn.reply_error, connect_ms)
    first = conn.timing.get("first_reply")
    sent = conn.timing.get("request_sent")
    first_ms = None if first is None or sent is None else round((first - sent) * 1000, 3)
    ended = None
    neg = conn.negotiation
    if (
        isinstance(conn.tpdu, ConnectionConfirm)
        and not isinstance(neg, NegotiationFailure)
        and conn.ended_by == "server"
        and not conn.server_sent_after_confirm
        and (not conn.client_sent_after_request or (conn.ms("cc", "end") or 0) <= 200)
    ):
        ended = "reset" if conn.end_reason == "rst" else "closed"
    return Attempt(
        label=conn.label,
        requested=conn.requested,
        tcp=TcpOutcome.CONNECTED,
        error=conn.reply_error,
        connect_ms=connect_ms,
        first_byte_ms=first_ms,
        reply_kind=conn.reply_kind,
        reply=conn.reply,
        tpdu=conn.tpdu,
        ended_by_server=ended,
    )


def _mcs_facts(conn: RdpConnection) -> McsFacts | None:
    """The MCS facts of one observed exchange (the live stage offers each method alone; a
    capture shows the one method of its connection)."""
    selected = conn.selected or 0
    sd = conn.server_data
    if sd is None and "mcs_ci" not in conn.timing and conn.mcs_error is None:
        return None  # no MCS Connect Initial was sent: no MCS stage (e.g. no request at all)
    if sd is None and conn.ended_by != "server" and conn.mcs_error is None and not conn.ultimatum:
        return None  # the capture stopped before the answer: nothing to judge
    cd = conn.client_data
    error = conn.mcs_error
    if sd is None and error is None:
        error = (
            f"disconnect provider ultimatum ({conn.ultimatum.reason_name})"
            if conn.ultimatum
            else f"the server ended the connection ({conn.end_reason}) before a Connect Response"
        )
    sec = sd.security if sd else None
    methods: dict[str, MethodOutcome] = {}
    if sec is not None:
        offered = "|".join(gcc.method_names(cd.encryption_methods or 0)) if cd else "?"
        methods[sec.method_name] = MethodOutcome(
            offered, True, True, sec.method_name, sec.level_name
        )
    return McsFacts(
        request=conn.label,
        selected_protocol=selected,
        encryption_methods=cd.encryption_methods if cd and cd.encryption_methods else 0,
        server_data=sd,
        connect_response=conn.connect_response,
        ultimatum=conn.ultimatum,
        error=error,
        elapsed_ms=conn.ms("mcs_ci", "mcs_cr") or 0.0,
        methods=methods,
    )


def _tls_facts(conn: RdpConnection) -> TlsFacts:
    """The TLS facts of the clear part of the handshake (TLS 1.3 encrypts the certificate).

    A certificate no library can read stays in the chain as CertificateUnreadable (size and
    SHA-256 in the finding ``tls.unreadable_certificate``); the version, cipher and the rest stay.
    """
    chain = describe_chain(conn.certificates)
    for c in chain:
        if isinstance(c, CertificateUnreadable):
            conn.notes.append(f"certificate not parsed: {c.error}")
    return TlsFacts(
        request=conn.label,
        selected=protocol_name(conn.selected or 0),
        version=conn.tls_version,
        cipher=conn.tls_cipher,
        cipher_bits=None,
        error=conn.tls_alert,
        chain=chain,
        server_name=conn.sni,
        alert=None if conn.tls_alert_code is None else tlsrec.Alert(*conn.tls_alert_code),
    )


def _udp_facts(conn: RdpConnection) -> UdpFacts:
    """The RDP-UDP facts of the observed datagrams."""
    syn, ack = conn.udp_syn, conn.udp_syn_ack
    probe = syn.length if syn else 0
    return UdpFacts(
        outcome="synack" if ack else "silent",
        syn_ack=ack,
        bytes_sent=conn.bytes[0],
        bytes_received=conn.bytes[1],
        probe_size=probe,
        amplification=round(ack.length / probe, 3) if ack and probe else None,
        rtt_ms=conn.ms("udp_syn", "udp_synack"),
        attempts=conn.udp_syn_count,
        ack_matches=(ack.ack == syn.isn) if ack and syn else None,
    )
