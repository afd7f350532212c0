"""The client side of an RDP connection in a capture, and the per-flow parse state.

:class:`State` holds each direction's phase and unparsed bytes; ``need`` is how many bytes a
direction must hold before parsing is tried again, so a PDU cut into many segments is parsed once
(issue 14: linear in bytes). :func:`read_client` reads the X.224 Connection Request (MS-RDPBCGR
2.2.1.1), then the MCS Connect Initial (2.2.1.3) or the TLS ClientHello; :func:`read_socks` takes
a SOCKS5 greeting and CONNECT (RFC 1928) off either direction. ISO-on-TCP traffic that uses the
same X.224 Connection Request is told apart here (:mod:`rdprobe.capture.sniff`).
:func:`close_connection` and :func:`no_payload_connection` copy a flow's ending and counters onto
its connection (a connection without payload: refused, unanswered, or open with no request).
"""

from __future__ import annotations

from rdprobe.capture.connection import RdpConnection
from rdprobe.capture.flows import CLIENT, SERVER, Flow
from rdprobe.capture.sniff import (
    iso_payload_name,
    iso_tsap_parameters,
    socks5_reply,
    socks5_request,
)
from rdprobe.protocol import gcc_client, mcs, tlsrec, tpkt, x224
from rdprobe.protocol.errors import NeedMoreData, ProtocolError
from rdprobe.protocol.reply import client_hello_sni
from rdprobe.protocol.tlsflight import FlightReader

__all__ = ["State", "close_connection", "no_payload_connection", "read_client",
           "read_socks"]  # fmt: skip

SOCKS, CR, NEXT, BANNER, TLS, DONE, SESSION = range(7)
#: After an MCS exchange under Standard RDP Security, the PDUs kept for the session decode
#: (rdprobe.capture.session_decode): at most this many, and this many bytes, per connection.
SESSION_PDUS = 64
SESSION_BYTES = 64 * 1024
END_NAMES = {CLIENT: "client", SERVER: "server"}
ISO = "ISO-on-TCP (RFC 1006: X.224 over TPKT) carrying {what}, not RDP"


class State:
    """Per-flow parse state (kept in Flow.user)."""

    __slots__ = ("buf", "conn", "flight", "need", "phase")

    def __init__(self, conn: RdpConnection, start: int = CR) -> None:
        self.conn = conn
        self.phase = [start, start]
        self.buf = [bytearray(), bytearray()]
        self.need = [1, 1]  # bytes a direction must hold before parsing is tried again
        self.flight: FlightReader | None = None


def tpkt_need(buf: bytearray) -> int:
    """Bytes of the TPKT PDU at the start of ``buf`` (4 until its header is complete)."""
    return max(4, (buf[2] << 8) | buf[3]) if len(buf) >= 4 else 4


def bare(conn: RdpConnection) -> bool:
    """A Connection Request with no RDP part: no cookie, routing token or RDP_NEG_REQ."""
    req = conn.request
    return req is not None and req.cookie is None and not req.routing_token and not req.negotiation


def not_mcs(data: bytes) -> bool:
    """The first X.224 data after a confirm is neither a BER Connect Initial / Response
    (0x7f65 / 0x7f66, T.125) nor a PER Disconnect Provider Ultimatum (choice 8)."""
    return not data or (data[0] != 0x7F and data[0] >> 2 != 8)


def read_socks(st: State, direction: int) -> bool:
    """Take the SOCKS5 bytes off the start of one direction; True once they are all read."""
    conn, buf = st.conn, st.buf[direction]
    found = socks5_request(bytes(buf)) if direction == CLIENT else socks5_reply(bytes(buf))
    if found is None:
        return False
    if found is False:
        conn.notes.append(f"{END_NAMES[direction]} SOCKS5 bytes do not parse; stopped")
        st.phase[direction] = DONE
        return False
    used = found[0]
    del buf[:used]
    tunnel = conn.tunnel = conn.tunnel or {"protocol": "SOCKS5"}
    if len(found) == 3:  # the client's CONNECT: (used, host, port)
        tunnel["target_host"], tunnel["target_port"] = found[1], found[2]
    else:  # the server's reply: (used, REP)
        tunnel["reply"] = found[1]
        if found[1] != 0:
            conn.notes.append(f"the SOCKS5 proxy refused the CONNECT (REP {found[1]})")
            st.phase = [DONE, DONE]
            return False
    st.phase[direction] = CR if direction == SERVER or st.phase[SERVER] != DONE else DONE
    st.need[direction] = 1
    return True


def read_client(st: State, ts: float) -> None:
    conn, buf = st.conn, st.buf[CLIENT]
    if st.phase[CLIENT] == CR:
        need = tpkt_need(buf) if buf[0] == tpkt.VERSION else 0
        if len(buf) < need:
            st.need[CLIENT] = need
            return
        try:
            pdu, rest = tpkt.split(bytes(buf))
        except NeedMoreData:
            st.need[CLIENT] = len(buf) + 1
            return
        except ProtocolError as exc:
            conn.request_error = str(exc)
            st.phase[CLIENT] = DONE
            return
        conn.timing["cr"] = ts
        if iso_tsap_parameters(pdu):  # ISO 8073 TSAP parameters: ISO-on-TCP, not RDP
            conn.request = x224.ConnectionRequest()
            conn.not_rdp = ISO.format(what="an ISO-TSAP application (TSAP parameters)")
        else:
            try:
                conn.request = x224.parse_request(pdu)
            except ProtocolError as exc:
                conn.request_error = str(exc)
        st.buf[CLIENT] = buf = bytearray(rest)
        st.phase[CLIENT] = NEXT
        st.need[CLIENT] = 1
    if st.phase[CLIENT] != NEXT or not buf:
        return
    conn.client_sent_after_request = True
    if buf[0] == tpkt.VERSION:  # MCS Connect Initial in an X.224 Data TPDU
        need = tpkt_need(buf)
        if len(buf) < need:
            st.need[CLIENT] = need
            return
        try:
            pdu, _ = tpkt.split(bytes(buf))
        except ProtocolError as exc:
            conn.client_data_error = str(exc)
        else:
            conn.timing["mcs_ci"] = ts
            try:
                user_data = x224.parse_data(pdu)
                if not_mcs(user_data) and (bare(conn) or conn.not_rdp):
                    conn.not_rdp = ISO.format(what=iso_payload_name(user_data))
                else:
                    ci = mcs.parse_connect_initial(user_data)
                    conn.client_data = gcc_client.parse_conference_create_request(ci.user_data)
            except ProtocolError as exc:
                conn.client_data_error = str(exc)
            if conn.client_data is not None and conn.selected == 0:
                del buf[: len(pdu)]  # Standard RDP Security: the rest may cross in clear
                st.phase[CLIENT] = SESSION
                read_session(st, CLIENT, ts)
                return
    elif buf[0] == tlsrec.ContentType.handshake:  # TLS ClientHello
        if len(buf) < 5:
            st.need[CLIENT] = 5
            return
        size = (buf[3] << 8) | buf[4]
        if len(buf) < 5 + size and size <= tlsrec.MAX_FRAGMENT:
            st.need[CLIENT] = 5 + size
            return
        conn.tls_client_hello = True
        conn.timing["tls_client_hello"] = ts
        conn.sni = client_hello_sni(bytes(buf[5 : 5 + size]))
    st.phase[CLIENT] = DONE
    st.buf[CLIENT] = bytearray()


def no_payload_connection(flow: Flow) -> RdpConnection:
    """A connection that carried no byte: a refused or unanswered SYN, or an open port that
    got no request (a half-open scan, a load balancer's health check)."""
    conn = RdpConnection("tcp", flow.client, flow.client_port, flow.server, flow.server_port,
                         flow.first_ts)  # fmt: skip
    close_connection(conn, flow)
    if flow.synack_ts is not None:
        conn.no_request = True
        how = {"rst": "a reset", "fin": "a FIN"}.get(flow.end_reason or "", None)
        who = f"by the {conn.ended_by} with {how}" if how and conn.ended_by else "without a close"
        duration = (conn.end_ts or flow.last_ts) - flow.first_ts
        conn.notes.append(
            f"port open (SYN+ACK seen); the client sent no request; ended {who} "
            f"after {duration:.3f} s"
        )
    elif flow.rst_ts[SERVER] is not None:
        conn.ended_by, conn.reply_error = "server", "the SYN was answered by a reset"
    else:
        conn.reply_error = f"{flow.syn_count} SYN(s) without an answer"
    return conn


def close_connection(conn: RdpConnection, flow: Flow) -> None:
    """Copy the flow's ending, counters and TCP timing onto the connection."""
    conn.end_reason = flow.end_reason
    conn.end_ts = flow.last_ts  # the last packet, as other tools measure a duration
    conn.ended_by = END_NAMES.get(flow.ended_by) if flow.ended_by is not None else None
    conn.packets = (flow.packets[0], flow.packets[1])
    conn.bytes = (flow.bytes[0], flow.bytes[1])
    conn.handshake = flow.handshake
    for key, ts in (
        ("syn", flow.syn_ts),
        ("synack", flow.synack_ts),
        ("ack", flow.ack_ts),
        ("end", flow.end_ts),
        ("last", flow.last_ts),
    ):
        if ts is not None:
            conn.timing[key] = ts


def read_session(st: State, direction: int, ts: float) -> None:
    """Keep whole TPKT PDUs after the MCS exchange, bounded (issue 10); anything else
    (fast-path output, the bounds reached) ends that direction."""
    conn, buf = st.conn, st.buf[direction]
    side = "c" if direction == CLIENT else "s"
    while buf:
        if buf[0] != tpkt.VERSION or len(conn.session_pdus) >= SESSION_PDUS:
            break
        need = tpkt_need(buf)
        if len(buf) < need:
            st.need[direction] = need
            return
        try:
            pdu, _ = tpkt.split(bytes(buf[:need]))
        except ProtocolError:
            break
        conn.session_bytes += len(pdu)
        if conn.session_bytes > SESSION_BYTES:
            break
        conn.session_pdus.append((side, ts, pdu))
        del buf[: len(pdu)]
        st.need[direction] = 0
    else:
        return
    st.phase[direction] = DONE
    st.buf[direction] = bytearray()
