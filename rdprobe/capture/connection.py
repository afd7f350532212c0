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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rdprobe.analysis.certificate import describe_chain
from rdprobe.analysis.encryption_level import MethodOutcome
from rdprobe.analysis.facts import CertificateUnreadable, McsFacts, TlsFacts, UdpFacts
from rdprobe.analysis.observations import Attempt, ReplyKind, TargetObservation, TcpOutcome
from rdprobe.capture.linklayer import format_address
from rdprobe.capture.zeek_names import certificate_facts, client_build_name, keyboard_layout_name
from rdprobe.protocol import gcc, gcc_client, gcc_server, mcs, rdpudp
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationFailure,
    NegotiationResponse,
    ServerTpdu,
    protocol_name,
)

TIMING_KEYS = ("syn", "synack", "ack", "request_sent", "cr", "first_reply", "cc", "mcs_ci",
               "mcs_cr", "tls_client_hello", "tls_server_hello", "udp_syn", "udp_synack",
               "end")  # fmt: skip


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
        return datetime.fromtimestamp(self.first_ts, UTC)

    def ms(self, a: str, b: str) -> float | None:
        """Milliseconds from stage ``a`` to stage ``b`` (None when either was not seen)."""
        ta, tb = self.timing.get(a), self.timing.get(b)
        return None if ta is None or tb is None else round((tb - ta) * 1000, 3)

    # -- views --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The pcap-specific "connection" object of the JSON output."""
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
            "tls": None if not (self.tls_client_hello or self.tls_version) else {
                "sni": self.sni,
                "version": self.tls_version,
                "cipher": self.tls_cipher,
                "alert": self.tls_alert,
                "certificates": len(self.certificates),
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
        }  # fmt: skip


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
    return obs


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
    if conn.request is None and conn.reply_kind is None:  # a SYN never answered by data
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
    """The TLS facts of the clear part of the handshake (TLS 1.3 encrypts the certificate)."""
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
        chain=tuple(c for c in chain if not isinstance(c, CertificateUnreadable)),
        server_name=conn.sni,
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
