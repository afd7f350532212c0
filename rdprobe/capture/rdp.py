"""Recognise RDP in a capture by content and follow each connection's handshake (MS-RDPBCGR 1.3.1.1).

A TCP flow is RDP when the client's first bytes are a TPKT header and an X.224 Connection Request
(2.2.1.1), on any port. Each RDP connection is parsed with the sans-IO core: the CR and the
server's reply (CC, or what it sends instead), then by content either the MCS Connect Initial /
Response (2.2.1.3, 2.2.1.4) or the clear part of the TLS handshake (ClientHello, ServerHello,
Certificate; TLS 1.3 encrypts the certificate). Once both directions are past that point the flow's
streams are dropped (only counters and the ending are kept), so the rest of a long session costs
nothing. RDP over UDP is recognised by its SYN (snSourceAck -1, MTUs 1132..1232) and the SYN+ACK
answering it (MS-RDPEUDP 2.2.2.5, 3.1.5.1.1).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from rdprobe.capture.connection import RdpConnection
from rdprobe.capture.flows import CLIENT, SERVER, Flow, FlowHandler
from rdprobe.capture.linklayer import Packet
from rdprobe.capture.reassembly import StreamData, StreamEvent, StreamGap
from rdprobe.protocol import gcc_client, gcc_server, mcs, rdpudp, tlsrec, tpkt, x224
from rdprobe.protocol.endpoint import RDP_PORT
from rdprobe.protocol.errors import NeedMoreData, ProtocolError
from rdprobe.protocol.reply import (
    BANNER_LIMIT,
    ReplyKind,
    client_hello_record,
    client_hello_sni,
    looks_like_request,
    sniff_reply,
)

__all__ = ["RdpHandler", "looks_like_request"]

#: Most of a server's clear TLS flight rdprobe reads (a certificate chain is a few KB).
TLS_FLIGHT_LIMIT = 64 * 1024
MAX_GAPS = 16
MAX_UDP_CANDIDATES = 10_000
#: Ports whose unanswered or refused SYNs are reported (no payload to recognise RDP by).
SYN_PORTS = frozenset({RDP_PORT})

_CR, _NEXT, _BANNER, _TLS, _DONE = range(5)
_END_NAMES = {CLIENT: "client", SERVER: "server"}


class _State:
    """Per-flow parse state (kept in Flow.user)."""

    __slots__ = ("buf", "conn", "phase", "tls_ts")

    def __init__(self, conn: RdpConnection) -> None:
        self.conn = conn
        self.phase = [_CR, _CR]
        self.buf = [bytearray(), bytearray()]
        self.tls_ts: float | None = None


class RdpHandler(FlowHandler):
    """FlowHandler that turns RDP flows into :class:`RdpConnection` objects via ``emit``."""

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
        self._udp: dict[tuple[bytes, int, bytes, int], RdpConnection] = {}

    def _wanted(self, client: bytes, cport: int, server: bytes, sport: int) -> bool:
        if self.host is not None and self.host not in (client, server):
            return False
        return self.port is None or self.port in (cport, sport)

    # -- TCP ------------------------------------------------------------------------------------

    def classify(self, flow: Flow, direction: int, data: bytes) -> bool | None:
        if direction == SERVER:  # a server speaking before its client is not RDP
            return False if flow.bytes[CLIENT] == 0 else None
        verdict = looks_like_request(data)
        if verdict and not self._wanted(
            flow.client, flow.client_port, flow.server, flow.server_port
        ):
            return False
        return verdict

    def on_stream(self, flow: Flow, direction: int, event: StreamEvent) -> None:
        st = flow.user
        if st is None:
            st = flow.user = _State(
                RdpConnection("tcp", flow.client, flow.client_port, flow.server, flow.server_port,
                              flow.first_ts)
            )  # fmt: skip
        assert isinstance(st, _State)
        conn = st.conn
        if type(event) is StreamGap:
            if len(conn.gaps) < MAX_GAPS:
                conn.gaps.append((_END_NAMES[direction], event.offset, event.length))
            if st.phase[direction] != _DONE:
                conn.notes.append(
                    f"{_END_NAMES[direction]} stream: the capture lost {event.length} bytes at "
                    f"offset {event.offset}; parsing of that direction stopped"
                )
                if direction == SERVER and st.phase[SERVER] in (_CR, _BANNER):
                    self._finish_reply(st, flow, gap=event.length)
                st.phase[direction] = _DONE
        else:
            assert isinstance(event, StreamData)
            if st.phase[direction] == _DONE or not event.data:
                return
            st.buf[direction] += event.data
            if direction == CLIENT:
                conn.timing.setdefault("request_sent", event.ts)
                self._client(st, event.ts)
            else:
                conn.timing.setdefault("first_reply", event.ts)
                self._server(st, event.ts)
        if st.phase[CLIENT] == _DONE and st.phase[SERVER] == _DONE:
            flow.streams = None  # the handshake is read: keep only counters and the ending

    def _client(self, st: _State, ts: float) -> None:
        conn, buf = st.conn, st.buf[CLIENT]
        if st.phase[CLIENT] == _CR:
            try:
                pdu, rest = tpkt.split(bytes(buf))
            except NeedMoreData:
                return
            except ProtocolError as exc:
                conn.request_error = str(exc)
                st.phase[CLIENT] = _DONE
                return
            conn.timing["cr"] = ts
            try:
                conn.request = x224.parse_request(pdu)
            except ProtocolError as exc:
                conn.request_error = str(exc)
            st.buf[CLIENT] = buf = bytearray(rest)
            st.phase[CLIENT] = _NEXT
        if st.phase[CLIENT] != _NEXT or not buf:
            return
        conn.client_sent_after_request = True
        if buf[0] == tpkt.VERSION:  # MCS Connect Initial in an X.224 Data TPDU
            try:
                pdu, _ = tpkt.split(bytes(buf))
            except NeedMoreData:
                return
            except ProtocolError as exc:
                conn.client_data_error = str(exc)
            else:
                conn.timing["mcs_ci"] = ts
                try:
                    ci = mcs.parse_connect_initial(x224.parse_data(pdu))
                    conn.client_data = gcc_client.parse_conference_create_request(ci.user_data)
                except ProtocolError as exc:
                    conn.client_data_error = str(exc)
        elif buf[0] == tlsrec.ContentType.handshake:  # TLS ClientHello
            record = client_hello_record(bytes(buf))
            if record is None:
                return
            conn.tls_client_hello = True
            conn.timing["tls_client_hello"] = ts
            conn.sni = client_hello_sni(record)
        st.phase[CLIENT] = _DONE
        st.buf[CLIENT] = bytearray()

    def _server(self, st: _State, ts: float) -> None:
        conn, buf = st.conn, st.buf[SERVER]
        phase = st.phase[SERVER]
        if phase == _CR:
            sniffed = sniff_reply(bytes(buf))
            if sniffed.kind is None:
                return
            if sniffed.kind is ReplyKind.NOT_TPKT:
                st.phase[SERVER] = phase = _BANNER
            elif sniffed.kind is not ReplyKind.TPDU:
                self._reply(st, sniffed.kind, sniffed.error)
                return
            else:
                conn.reply, conn.tpdu = bytes(buf[: sniffed.length]), sniffed.tpdu
                conn.reply_kind = ReplyKind.TPDU
                conn.timing["cc"] = ts
                del buf[: sniffed.length]
                st.phase[SERVER] = phase = _NEXT
                if not isinstance(conn.tpdu, x224.ConnectionConfirm):
                    st.phase[SERVER] = _DONE
                    return
        if phase == _BANNER:
            if len(buf) >= BANNER_LIMIT:
                self._reply(st, ReplyKind.NOT_TPKT, None)
            return
        if phase == _NEXT and buf:
            conn.server_sent_after_confirm = True
            if buf[0] == tpkt.VERSION:
                self._server_mcs(st, ts)
                return
            if buf[0] in (tlsrec.ContentType.handshake, tlsrec.ContentType.alert):
                st.phase[SERVER] = phase = _TLS
                st.tls_ts = ts
            else:
                conn.notes.append(f"server sent 0x{buf[0]:02x}... after the confirm")
                st.phase[SERVER] = _DONE
                return
        if phase == _TLS:
            self._server_tls(st, ts, final=len(buf) >= TLS_FLIGHT_LIMIT)

    def _reply(self, st: _State, kind: ReplyKind, error: str | None) -> None:
        buf = st.buf[SERVER]
        st.conn.reply_kind, st.conn.reply_error = kind, error
        st.conn.reply = bytes(buf[:BANNER_LIMIT])
        st.phase[SERVER] = _DONE
        st.buf[SERVER] = bytearray()

    def _server_mcs(self, st: _State, ts: float) -> None:
        conn = st.conn
        try:
            pdu, _ = tpkt.split(bytes(st.buf[SERVER]))
        except NeedMoreData:
            return
        except ProtocolError as exc:
            conn.mcs_error = str(exc)
        else:
            conn.timing["mcs_cr"] = ts
            try:
                answer = mcs.parse_server_pdu(x224.parse_data(pdu))
                if isinstance(answer, mcs.DisconnectProviderUltimatum):
                    conn.ultimatum = answer
                else:
                    conn.connect_response = answer
                    conn.server_data = gcc_server.parse_conference_create_response(answer.user_data)
            except ProtocolError as exc:
                conn.mcs_error = str(exc)
        st.phase[SERVER] = _DONE
        st.buf[SERVER] = bytearray()

    def _server_tls(self, st: _State, ts: float, *, final: bool) -> None:
        conn = st.conn
        try:
            flight = tlsrec.parse_server_flight(bytes(st.buf[SERVER][:TLS_FLIGHT_LIMIT]))
        except NeedMoreData:
            return
        except ProtocolError as exc:
            conn.notes.append(f"server TLS flight: {exc}")
            st.phase[SERVER] = _DONE
            return
        sh = flight.server_hello
        if sh is not None and "tls_server_hello" not in conn.timing:
            conn.timing["tls_server_hello"] = ts
        done = (
            final
            or flight.server_hello_done
            or flight.alert is not None
            or (sh is not None and sh.version >= 0x0304)
        )
        if not done:
            return
        conn.tls_version, conn.tls_cipher = flight.version, flight.cipher
        conn.certificates = flight.certificates
        if flight.alert is not None:
            conn.tls_alert = f"alert {flight.alert.description} (level {flight.alert.level})"
        st.phase[SERVER] = _DONE
        st.buf[SERVER] = bytearray()

    def _finish_reply(self, st: _State, flow: Flow, *, gap: int = 0) -> None:
        """No whole reply: say what the server did instead (as the live probe would)."""
        conn, buf = st.conn, st.buf[SERVER]
        if st.phase[SERVER] == _BANNER:
            self._reply(st, ReplyKind.NOT_TPKT, None)
        elif gap:
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
        if st is None:
            if (
                flow.bytes == [0, 0]
                and flow.syn_ts is not None
                and flow.server_port in self.syn_ports
                and self._wanted(flow.client, flow.client_port, flow.server, flow.server_port)
            ):
                conn = RdpConnection(
                    "tcp", flow.client, flow.client_port, flow.server, flow.server_port,
                    flow.first_ts,
                )  # fmt: skip
                self._close(conn, flow)
                if flow.rst_ts[SERVER] is not None:
                    conn.ended_by, conn.reply_error = "server", "the SYN was answered by a reset"
                else:
                    conn.reply_error = f"{flow.syn_count} SYN(s) without an answer"
                self.emit(conn)
            return
        assert isinstance(st, _State)
        if st.phase[CLIENT] == _CR and st.conn.request is None and not st.conn.request_error:
            st.conn.request_error = "the Connection Request is incomplete in the capture"
        if st.phase[SERVER] in (_CR, _BANNER) and st.conn.reply_kind is None:
            self._finish_reply(st, flow)
        elif st.phase[SERVER] == _TLS:
            self._server_tls(st, flow.last_ts, final=True)
        self._close(st.conn, flow)
        flow.user = None
        self.emit(st.conn)

    @staticmethod
    def _close(conn: RdpConnection, flow: Flow) -> None:
        conn.end_reason = flow.end_reason
        conn.end_ts = flow.end_ts
        conn.ended_by = _END_NAMES.get(flow.ended_by) if flow.ended_by is not None else None
        conn.packets = (flow.packets[0], flow.packets[1])
        conn.bytes = (flow.bytes[0], flow.bytes[1])
        for key, ts in (
            ("syn", flow.syn_ts),
            ("synack", flow.synack_ts),
            ("ack", flow.ack_ts),
            ("end", flow.end_ts),
        ):
            if ts is not None:
                conn.timing[key] = ts

    # -- UDP ------------------------------------------------------------------------------------

    def on_udp(self, ts: float, packet: Packet) -> None:
        data = packet.payload
        if len(data) < 16 or not data[7] & rdpudp.Flag.RDPUDP_FLAG_SYN:
            return
        try:
            syn = rdpudp.parse_syn(data)
        except ProtocolError:
            return
        if not syn.mtus_in_range:
            return
        src, sport, dst, dport = packet.src, packet.sport, packet.dst, packet.dport
        if syn.is_syn_ack:
            conn = self._udp.get((dst, dport, src, sport))
            if conn is not None and conn.udp_syn_ack is None:
                conn.udp_syn_ack = syn
                conn.timing["udp_synack"] = ts
                conn.bytes = (conn.bytes[0], conn.bytes[1] + len(data))
                conn.packets = (conn.packets[0], conn.packets[1] + 1)
            return
        if syn.ack != rdpudp.SN_SOURCE_ACK_SYN or not self._wanted(src, sport, dst, dport):
            return
        key = (src, sport, dst, dport)
        conn = self._udp.get(key)
        if conn is None:
            if len(self._udp) >= MAX_UDP_CANDIDATES:
                return
            conn = self._udp[key] = RdpConnection("udp", src, sport, dst, dport, ts)
            conn.udp_syn = syn
            conn.timing["udp_syn"] = ts
        conn.udp_syn_count += 1
        conn.end_ts = ts
        conn.bytes = (conn.bytes[0] + len(data), conn.bytes[1])
        conn.packets = (conn.packets[0] + 1, conn.packets[1])

    def finish_udp(self) -> None:
        """Emit the RDP-UDP handshakes seen (call once at the end of the capture)."""
        for conn in self._udp.values():
            conn.end_reason = "capture-end"
            self.emit(conn)
        self._udp.clear()
