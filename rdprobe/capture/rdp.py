"""Recognise RDP in a capture by content and follow each connection's handshake (MS-RDPBCGR 1.3.1.1).

A TCP flow is RDP when the client's first bytes are a TPKT header and an X.224 Connection Request
(2.2.1.1), on any port; or a TLS ClientHello on an RDP port when the capture missed the start; or
a SOCKS5 CONNECT to an RDP port or carrying a Connection Request (:mod:`rdprobe.capture.sniff`).
Each RDP connection is parsed with the sans-IO core, incrementally (every byte is looked at a
bounded number of times, however the stream is segmented): the CR and the server's reply (CC, or
what it sends instead), then by content either the MCS Connect Initial / Response (2.2.1.3,
2.2.1.4) or the clear part of the TLS handshake (ClientHello, ServerHello, Certificate,
ServerKeyExchange; TLS 1.3 encrypts the certificate). Once both directions are past that point the
flow's streams are dropped (only counters and the ending are kept), so the rest of a long session
costs nothing. A fault while reading one connection is recorded in its ``error`` and stops only
that connection. RDP over UDP is followed by :class:`~rdprobe.capture.udp.UdpTracker`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from rdprobe.capture.connection import RdpConnection
from rdprobe.capture.flows import CLIENT, SERVER, Flow, FlowHandler
from rdprobe.capture.linklayer import Packet
from rdprobe.capture.rdpclient import (
    BANNER,
    CR,
    DONE,
    END_NAMES,
    ISO,
    NEXT,
    SESSION,
    SOCKS,
    TLS,
    State,
    bare,
    close_connection,
    no_payload_connection,
    not_mcs,
    read_client,
    read_session,
    read_socks,
    tpkt_need,
)
from rdprobe.capture.reassembly import StreamData, StreamEvent, StreamGap
from rdprobe.capture.sniff import (
    RDP_PORTS,
    iso_payload_name,
    looks_like_tls_hello,
    socks5_request,
)
from rdprobe.capture.udp import UdpTracker
from rdprobe.protocol import gcc_server, mcs, tlsrec, tpkt, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.reply import BANNER_LIMIT, ReplyKind, looks_like_request, sniff_reply
from rdprobe.protocol.tlsflight import FlightReader

__all__ = ["RdpHandler"]

#: Most of a server's clear TLS flight rdprobe reads (a certificate chain is a few KB).
TLS_FLIGHT_LIMIT = 64 * 1024
MAX_GAPS = 16
#: Ports whose unanswered, refused or payload-less connections are reported.
SYN_PORTS = RDP_PORTS
#: (server, port) pairs remembered as RDP listeners (their TLS starts are recognised too).
MAX_RDP_SERVERS = 4096


class RdpHandler(FlowHandler):
    """FlowHandler that turns RDP flows into :class:`RdpConnection` objects via ``emit``."""

    #: TPKT (a Connection Request), a TLS handshake record, a SOCKS5 greeting: nothing else can
    #: start a flow worth following (issue 12: the rest costs no Flow object)
    start_bytes = frozenset({tpkt.VERSION, 0x16, 0x05})

    def __init__(
        self,
        emit: Callable[[RdpConnection], None],
        *,
        host: str | None = None,
        port: int | None = None,
        syn_ports: frozenset[int] = SYN_PORTS,
    ) -> None:
        self.emit = emit
        self.host = ipaddress.ip_address(host).packed if host else None
        self.port = port
        self.syn_ports = frozenset({port}) if port is not None else syn_ports
        self.rdp_ports = set(RDP_PORTS) | ({port} if port is not None else set())
        self.rdp_servers: set[tuple[bytes, int]] = set()
        self.udp = UdpTracker(self._emit, self._wanted, self.rdp_ports)
        self.udp_faults = 0  # datagrams whose handling failed (each skipped, counted)

    def _wanted(self, client: bytes, cport: int, server: bytes, sport: int) -> bool:
        if self.host is not None and self.host not in (client, server):
            return False
        return self.port is None or self.port in (cport, sport)

    def _emit(self, conn: RdpConnection) -> None:
        self.emit(conn)

    # -- TCP ------------------------------------------------------------------------------------

    def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
        if direction == SERVER:  # a server speaking before its client is not RDP
            return False if flow.bytes[CLIENT] == 0 else None
        verdict = looks_like_request(data)
        if verdict is False:
            verdict = self._other_start(flow, data)
        if verdict and not self._wanted(
            flow.client, flow.client_port, flow.server, flow.server_port
        ):
            return False
        return verdict

    def _other_start(self, flow: Flow, data: bytes) -> bool | None:
        """A TLS ClientHello on an RDP port (start missed) or a SOCKS5 tunnel to RDP."""
        if data[0] == 0x16:
            rdp_port = flow.server_port in self.rdp_ports or (
                (flow.server, flow.server_port) in self.rdp_servers
            )
            if flow.syn_ts is None and rdp_port:
                verdict = looks_like_tls_hello(data, tlsrec.HandshakeType.client_hello)
                if verdict:
                    flow.user = "tls"
                return verdict
            return False
        if data[0] == 5:
            request = socks5_request(data)
            if not isinstance(request, tuple):
                return request
            used, _host, port = request
            rest = data[used:]
            verdict = True if port in self.rdp_ports else looks_like_request(rest) if rest else None
            if verdict:
                flow.user = "socks"
            return verdict
        return False

    def on_stream(self, flow: Flow, direction: int, event: StreamEvent) -> None:
        st = flow.user
        if not isinstance(st, State):
            conn = RdpConnection("tcp", flow.client, flow.client_port, flow.server,
                                 flow.server_port, flow.first_ts)  # fmt: skip
            start = SOCKS if st == "socks" else NEXT if st == "tls" else CR
            st = flow.user = State(conn, start)
            if start == NEXT:
                conn.start_missed = True
                conn.notes.append(
                    "the capture starts inside this connection (at the TLS ClientHello): "
                    "the X.224 negotiation before it was not captured"
                )
        try:
            self._stream(st, direction, event)
        except Exception as exc:  # a fault of ours: this connection says so, the others go on
            if st.conn.error is None:
                text = str(exc).strip().splitlines()
                st.conn.error = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
            st.phase = [DONE, DONE]
            st.buf = [bytearray(), bytearray()]
        if st.phase[CLIENT] == DONE and st.phase[SERVER] == DONE:
            flow.streams = None  # the handshake is read: keep only counters and the ending

    def _stream(self, st: State, direction: int, event: StreamEvent) -> None:
        conn = st.conn
        if type(event) is StreamGap:
            if len(conn.gaps) < MAX_GAPS:
                conn.gaps.append((END_NAMES[direction], event.offset, event.length))
            if st.phase[direction] != DONE:
                conn.notes.append(
                    f"{END_NAMES[direction]} stream: the capture lost {event.length} bytes at "
                    f"offset {event.offset}; parsing of that direction stopped"
                )
                if direction == SERVER and st.phase[SERVER] in (CR, BANNER):
                    self._finish_reply(st, None, gap=event.length)
                elif direction == SERVER and st.phase[SERVER] == TLS:
                    self._server_tls(st, event.ts, final=True)
                st.phase[direction] = DONE
            return
        assert isinstance(event, StreamData)
        data, ts = event.data, event.ts
        if st.phase[direction] == DONE or not data:
            return
        if direction == SERVER and st.phase[SERVER] == TLS:
            assert st.flight is not None
            st.flight.feed(data)
            self._server_tls(st, ts, final=False)
            return
        buf = st.buf[direction]
        buf += data
        if len(buf) < st.need[direction]:
            return
        if st.phase[direction] == SOCKS and (not read_socks(st, direction) or not buf):
            return
        if st.phase[direction] == SESSION:
            read_session(st, direction, ts)
            return
        if direction == CLIENT:
            conn.timing.setdefault("request_sent", ts)
            self._client(st, ts)
        else:
            conn.timing.setdefault("first_reply", ts)
            self._server(st, ts)

    def _client(self, st: State, ts: float) -> None:
        read_client(st, ts)
        if st.conn.request is not None or st.conn.request_error is not None:
            self.remember_server(st.conn)

    def remember_server(self, conn: RdpConnection) -> None:
        """An RDP listener seen: TLS starts to it are recognised later in the capture."""
        if conn.not_rdp is None and len(self.rdp_servers) < MAX_RDP_SERVERS:
            self.rdp_servers.add((conn.server, conn.server_port))

    def _server(self, st: State, ts: float) -> None:
        conn, buf = st.conn, st.buf[SERVER]
        phase = st.phase[SERVER]
        if phase == CR:
            sniffed = sniff_reply(bytes(buf))
            if sniffed.kind is None:  # a valid prefix: parse again once the PDU can be whole
                st.need[SERVER] = len(buf) + max(1, sniffed.needed)
                return
            if sniffed.kind is ReplyKind.NOT_TPKT:
                st.phase[SERVER] = phase = BANNER
            elif sniffed.kind is not ReplyKind.TPDU:
                self._reply(st, sniffed.kind, sniffed.error)
                return
            else:
                conn.reply, conn.tpdu = bytes(buf[: sniffed.length]), sniffed.tpdu
                conn.reply_kind = ReplyKind.TPDU
                conn.timing["cc"] = ts
                del buf[: sniffed.length]
                st.need[SERVER] = 1
                st.phase[SERVER] = phase = NEXT
                if not isinstance(conn.tpdu, x224.ConnectionConfirm):
                    st.phase[SERVER] = DONE
                    return
        if phase == BANNER:
            if len(buf) >= BANNER_LIMIT:
                self._reply(st, ReplyKind.NOT_TPKT, None)
            else:
                st.need[SERVER] = BANNER_LIMIT
            return
        if phase == NEXT and buf:
            conn.server_sent_after_confirm = True
            if buf[0] == tpkt.VERSION:
                self._server_mcs(st, ts)
                return
            if buf[0] in (tlsrec.ContentType.handshake, tlsrec.ContentType.alert):
                st.phase[SERVER] = TLS
                st.flight = FlightReader(TLS_FLIGHT_LIMIT)
                data = bytes(buf)
                st.buf[SERVER] = bytearray()
                try:
                    st.flight.feed(data)
                except ProtocolError as exc:
                    conn.notes.append(f"server TLS flight: {exc}")
                    st.phase[SERVER] = DONE
                    return
                self._server_tls(st, ts, final=False)
            else:
                conn.notes.append(f"server sent 0x{buf[0]:02x}... after the confirm")
                st.phase[SERVER] = DONE

    def _reply(self, st: State, kind: ReplyKind, error: str | None) -> None:
        buf = st.buf[SERVER]
        st.conn.reply_kind, st.conn.reply_error = kind, error
        st.conn.reply = bytes(buf[:BANNER_LIMIT])
        st.phase[SERVER] = DONE
        st.buf[SERVER] = bytearray()

    def _server_mcs(self, st: State, ts: float) -> None:
        conn, buf = st.conn, st.buf[SERVER]
        need = tpkt_need(buf)
        if len(buf) < need:
            st.need[SERVER] = need
            return
        try:
            pdu, _ = tpkt.split(bytes(buf))
        except ProtocolError as exc:
            conn.mcs_error = str(exc)
        else:
            conn.timing["mcs_cr"] = ts
            try:
                user_data = x224.parse_data(pdu)
                if not_mcs(user_data) and (bare(conn) or conn.not_rdp):
                    conn.not_rdp = ISO.format(what=iso_payload_name(user_data))
                else:
                    answer = mcs.parse_server_pdu(user_data)
                    if isinstance(answer, mcs.DisconnectProviderUltimatum):
                        conn.ultimatum = answer
                    else:
                        conn.connect_response = answer
                        conn.server_data = gcc_server.parse_conference_create_response(
                            answer.user_data
                        )
            except ProtocolError as exc:
                conn.mcs_error = str(exc)
            if conn.server_data is not None and conn.selected == 0:
                del buf[: len(pdu)]  # Standard RDP Security: the rest may cross in clear
                st.phase[SERVER] = SESSION
                read_session(st, SERVER, ts)
                return
        st.phase[SERVER] = DONE
        st.buf[SERVER] = bytearray()

    def _server_tls(self, st: State, ts: float, *, final: bool) -> None:
        conn, reader = st.conn, st.flight
        if reader is None:
            return
        if reader.server_hello is not None and "tls_server_hello" not in conn.timing:
            conn.timing["tls_server_hello"] = ts
        if not (final or reader.complete):
            return
        flight = reader.finish()
        if flight.server_hello is not None and "tls_server_hello" not in conn.timing:
            conn.timing["tls_server_hello"] = ts
        conn.tls_version, conn.tls_cipher = flight.version, flight.cipher
        conn.certificates = flight.certificates
        conn.tls_key_exchange = flight.key_exchange
        if flight.alert is not None:
            alert = flight.alert
            conn.tls_alert = f"{alert.name} (alert {alert.description}, {alert.level_name})"
            conn.tls_alert_code = (alert.level, alert.description)
        if reader.error:
            conn.notes.append(f"server TLS flight: {reader.error}")
        st.phase[SERVER] = DONE
        st.flight = None

    def _finish_reply(self, st: State, flow: Flow | None, *, gap: int = 0) -> None:
        """No whole reply: say what the server did instead (as the live probe would)."""
        conn, buf = st.conn, st.buf[SERVER]
        if st.phase[SERVER] == BANNER:
            self._reply(st, ReplyKind.NOT_TPKT, None)
        elif gap or flow is None:
            self._reply(st, ReplyKind.TRUNCATED, f"the capture misses {gap} bytes of the reply")
        elif not buf and "first_reply" not in conn.timing:
            kind = (
                ReplyKind.RESET
                if flow.rst_ts[SERVER] is not None
                else ReplyKind.CLOSED
                if flow.fin_ts[SERVER] is not None
                else ReplyKind.SILENT
            )
            self._reply(st, kind, None)
        elif flow.rst_ts[SERVER] is not None or flow.fin_ts[SERVER] is not None:
            how = "reset" if flow.rst_ts[SERVER] is not None else "closed"
            self._reply(st, ReplyKind.TRUNCATED, f"{how} mid-PDU")
        else:
            self._reply(st, ReplyKind.SLOW, "still incomplete at the end of the capture")

    def on_end(self, flow: Flow) -> None:
        st = flow.user
        if not isinstance(st, State):
            if (
                flow.bytes == [0, 0]
                and (flow.syn_ts is not None or flow.synack_ts is not None)
                and flow.server_port in self.syn_ports
                and self._wanted(flow.client, flow.client_port, flow.server, flow.server_port)
            ):
                self.emit(no_payload_connection(flow))
            return
        conn = st.conn
        try:
            if st.phase[CLIENT] == CR and conn.request is None and not conn.request_error:
                if not conn.start_missed:
                    conn.request_error = "the Connection Request is incomplete in the capture"
            if st.phase[SERVER] in (CR, BANNER) and conn.reply_kind is None:
                if not (conn.start_missed or conn.not_rdp or conn.tunnel):
                    self._finish_reply(st, flow)
            elif st.phase[SERVER] == TLS:
                self._server_tls(st, flow.last_ts, final=True)
        except Exception as exc:
            conn.error = conn.error or f"{type(exc).__name__}: {exc}"
        close_connection(conn, flow)
        flow.user = None
        self.emit(conn)

    # -- UDP ------------------------------------------------------------------------------------

    def on_udp(self, ts: float, packet: Packet) -> None:
        try:
            self.udp.packet(ts, packet)
        except Exception:  # a fault of ours on one datagram must not end the capture
            self.udp_faults += 1

    def finish_udp(self) -> None:
        """Emit the RDP-UDP flows still open (call once at the end of the capture)."""
        self.udp.finish()
