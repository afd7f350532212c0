"""Capture shapes other tools report and rdprobe judged wrongly or not at all (issue 9): each built
packet by packet, read by `analyze` and judged as `rdprobe pcap` judges it."""

from __future__ import annotations

import struct
from pathlib import Path

import pcapgen as g
from certgen import self_signed
from cryptography.hazmat.primitives import serialization

from rdprobe.capture.analyze import analyze, judge
from rdprobe.capture.connection import RdpConnection
from rdprobe.protocol import gcc_client, mcs, rdpudp, x224


def read(tmp_path: Path, frames: list[tuple[float, bytes]], **kw) -> list[RdpConnection]:
    f = tmp_path / "shape.pcap"
    f.write_bytes(g.pcap_bytes(frames))
    conns, _ = analyze(f, **kw)
    return conns


def ids(conn: RdpConnection) -> set[str]:
    return {f.id for f in judge(conn).findings}


def der(cn: str = "rdp.example.test") -> bytes:
    return self_signed(cn)[1].public_bytes(serialization.Encoding.DER)


# -- TCP connections without payload --------------------------------------------------------------


def test_half_open_scan_of_an_open_port_is_open_not_timeout(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, g.Tcp().syn().syn_ack().rst_c().frames)
    report = judge(conn)
    assert report.outcome == "open" and conn.ended_by == "client" and conn.end_reason == "rst"
    assert "capture.no_request" in ids(conn) and "tcp.timeout" not in ids(conn)
    d = conn.to_dict()
    assert d["no_request"] is True and d["tcp_handshake"] == "SYN, SYN+ACK, RST(client)"
    assert "ended by the client with a reset" in " ".join(d["notes"])


def test_server_reset_a_minute_after_the_handshake_is_open_not_refused(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, g.Tcp().handshake().wait(60).rst_s().frames)
    report = judge(conn)
    assert report.outcome == "open" and conn.ended_by == "server"
    assert not any(f.id.startswith("tcp.refused") for f in report.findings)
    assert ids(conn) == {"capture.no_request"}  # no request: no MCS stage to have failed
    assert 60 < conn.to_dict()["duration_s"] < 61


def test_health_check_fin_is_credited_to_the_client(tmp_path: Path) -> None:
    frames = g.Tcp().handshake().fin_c().fin_s().ack().frames
    (conn,) = read(tmp_path, frames)
    assert conn.ended_by == "client" and conn.end_reason == "fin"
    assert judge(conn).outcome == "open" and "capture.no_request" in ids(conn)


def test_unanswered_and_refused_syns_stay_timeout_and_refused(tmp_path: Path) -> None:
    (silent,) = read(tmp_path, g.Tcp().syn().wait(1).syn().frames)
    report = judge(silent)
    assert report.outcome == "timeout"
    # a capture has no timeout: the title says how long the capture saw the client wait
    assert [f.title for f in report.findings if f.id == "tcp.timeout"] == [
        "No answer to the connection attempt within 1.001 s"
    ]
    (refused,) = read(tmp_path, g.Tcp().syn().rst_s().frames)
    assert judge(refused).outcome == "refused"


# -- ISO-on-TCP -----------------------------------------------------------------------------------

# S7comm: CR with TPDU size and calling / called TSAP parameters (ISO 8073 §13.3.4), the CC,
# then an S7 "setup communication" job in an X.224 Data TPDU.
S7_CR = bytes.fromhex("0300001611e00000000100c0010ac1020100c2020102")
S7_CC = bytes.fromhex("0300001611d00001000100c0010ac1020100c2020102")
S7_SETUP = x224.build_data(bytes.fromhex("32010000000000080000f0000001000101e0"))


def test_s7comm_on_port_102_is_iso_on_tcp_not_rdp(tmp_path: Path) -> None:
    conn_ = g.Tcp(sport=102).handshake().c(S7_CR).s(S7_CC).c(S7_SETUP).s(S7_SETUP)
    (conn,) = read(tmp_path, conn_.fin_c().fin_s().frames)
    report = judge(conn)
    assert report.outcome == "x224_not_rdp" and report.setting is None
    assert "x224.not_rdp" in ids(conn) and "rdp.answered" not in ids(conn)
    assert "S7comm" in conn.not_rdp and conn.request_error is None


def test_bare_request_then_non_mcs_data_is_not_rdp(tmp_path: Path) -> None:
    bare_cr = x224.build_request()
    bare_cc = x224.build_confirm(None)
    mms = x224.build_data(bytes.fromhex("0db2050600130100160102140200023302000134020002c1"))
    conn_ = g.Tcp(sport=102).handshake().c(bare_cr).s(bare_cc).c(mms).s(mms)
    (conn,) = read(tmp_path, conn_.fin_c().fin_s().frames)
    assert judge(conn).outcome == "x224_not_rdp" and "MMS" in conn.not_rdp


def test_bare_request_of_an_old_rdp_client_stays_rdp(tmp_path: Path) -> None:
    ci = x224.build_data(mcs.build_connect_initial(gcc_client.build_client_data()))
    conn_ = g.Tcp().handshake().c(x224.build_request()).s(x224.build_confirm(None)).c(ci)
    (conn,) = read(tmp_path, conn_.fin_c().fin_s().frames)
    assert conn.not_rdp is None and judge(conn).outcome == "rdp"


# -- client facts: core version and earlyCapabilityFlags ------------------------------------------


def test_client_core_version_and_early_capabilities(tmp_path: Path) -> None:
    core = gcc_client.ClientCore(version=0x00080011, early_capability_flags=0x07A1)
    ci = x224.build_data(mcs.build_connect_initial(gcc_client.build_client_data(core=core)))
    req = x224.build_request(cookie="u", requested=0)
    cc = x224.build_confirm(x224.NegotiationResponse(selected=0, flags=0))
    (conn,) = read(tmp_path, g.Tcp().handshake().c(req).s(cc).c(ci).fin_c().frames)
    info = conn.to_dict()["client_info"]
    assert info["version"] == 0x00080011 and info["version_name"].startswith("RDP 10.12")
    assert info["early_capability_flags"] == 0x07A1
    assert info["early_capabilities"] == [
        "RNS_UD_CS_SUPPORT_ERRINFO_PDU", "RNS_UD_CS_VALID_CONNECTION_TYPE",
        "RNS_UD_CS_SUPPORT_NETCHAR_AUTODETECT", "RNS_UD_CS_SUPPORT_DYNVC_GFX_PROTOCOL",
        "RNS_UD_CS_SUPPORT_DYNAMIC_TIME_ZONE", "RNS_UD_CS_SUPPORT_HEARTBEAT_PDU",
    ]  # fmt: skip


# -- TLS facts: key exchange, exponent, alerts; a capture starting at the ClientHello -------------


def tls_conn(flight: bytes, **kw) -> g.Tcp:
    return g.Tcp(**kw).handshake().c(g.CR).s(g.CC_SSL).c(g.client_hello()).s(flight)


def test_key_exchange_group_and_certificate_exponent(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, tls_conn(g.server_flight([der()], group=0x001D)).fin_c().frames)
    tls = conn.to_dict()["tls"]
    assert tls["key_exchange"] == "x25519" and tls["public_exponent"] == 65537
    leaf = judge(conn).observation.stages["tls"]["chain"][0]
    assert leaf["key_exponent"] == 65537 and leaf["key_type"] == "RSA"


def test_tls_alert_is_named(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, tls_conn(g.alert(70)).fin_s().frames)
    tls = conn.to_dict()["tls"]
    assert tls["alert_name"] == "protocol_version" and tls["alert_level"] == 2
    assert tls["alert"] == "protocol_version (alert 70, fatal)"


def test_capture_starting_at_the_client_hello_is_reported(tmp_path: Path) -> None:
    whole = tls_conn(g.server_flight([der("ts.example.test")])).fin_c().fin_s().frames
    # drop the handshake, the CR and the CC: the capture starts at the ClientHello
    start = next(i for i, (_, f) in enumerate(whole) if f[54:55] == b"\x16")
    (conn,) = read(tmp_path, whole[start:])
    assert conn.start_missed and conn.request is None and conn.tls_version == "TLSv1.2"
    assert conn.sni == "rdp.example.test"
    report = judge(conn)
    assert report.outcome == "rdp" and "capture.start_missed" in ids(conn)
    assert report.observation.stages["tls"]["chain"][0]["subject_cn"] == "ts.example.test"


def test_tls_on_another_port_without_rdp_is_not_reported(tmp_path: Path) -> None:
    whole = tls_conn(g.server_flight([der()]), sport=443).fin_c().frames
    start = next(i for i, (_, f) in enumerate(whole) if f[54:55] == b"\x16")
    assert read(tmp_path, whole[start:]) == []


# -- SOCKS5 ---------------------------------------------------------------------------------------


def socks_connect(port: int = 3389) -> bytes:
    return b"\x05\x01\x00" + b"\x05\x01\x00\x01" + bytes([10, 9, 9, 9]) + struct.pack("!H", port)


SOCKS_REPLY = b"\x05\x00" + b"\x05\x00\x00\x01" + bytes([10, 0, 0, 2]) + struct.pack("!H", 40000)


def test_rdp_inside_socks5_is_followed(tmp_path: Path) -> None:
    conn_ = g.Tcp(sport=1080).handshake().c(socks_connect()).s(SOCKS_REPLY)
    conn_.c(g.CR).s(g.CC_SSL).c(g.client_hello()).s(g.server_flight([der()]))
    (conn,) = read(tmp_path, conn_.fin_c().fin_s().frames)
    assert conn.tunnel == {"protocol": "SOCKS5", "target_host": "10.9.9.9",
                           "target_port": 3389, "reply": 0}  # fmt: skip
    assert conn.request is not None and conn.request.cookie == "tester"
    assert conn.selected == 1 and conn.tls_version == "TLSv1.2"
    assert judge(conn).outcome == "rdp"


def test_socks5_to_a_non_rdp_port_carrying_a_request_is_followed(tmp_path: Path) -> None:
    conn_ = g.Tcp(sport=1080).handshake().c(socks_connect(50000) + g.CR).s(SOCKS_REPLY + g.CC_SSL)
    (conn,) = read(tmp_path, conn_.fin_c().fin_s().frames)
    assert conn.tunnel["target_port"] == 50000 and conn.selected == 1


def test_socks5_to_http_is_not_reported(tmp_path: Path) -> None:
    conn_ = g.Tcp(sport=1080).handshake().c(socks_connect(80) + b"GET / HTTP/1.1\r\n\r\n")
    assert read(tmp_path, conn_.s(SOCKS_REPLY).fin_c().frames) == []


# -- durations -----------------------------------------------------------------------------------


def test_duration_runs_to_the_last_packet(tmp_path: Path) -> None:
    conn_ = tls_conn(g.server_flight([der()])).fin_c().wait(5).s(b"\x17\x03\x03\x00\x01x")
    (conn,) = read(tmp_path, conn_.fin_s().ack().frames)
    d = conn.to_dict()
    assert d["end_reason"] == "fin" and d["ended_by"] == "client"
    assert d["duration_s"] > 5 and d["timing_ms"]["last"] > d["timing_ms"]["end"] + 5000


# -- RDP over UDP ---------------------------------------------------------------------------------


def udp_flow(with_syn: bool = True) -> list[tuple[float, bytes]]:
    c, s = g.ip4("10.0.0.1"), g.ip4("10.0.0.2")
    syn = rdpudp.build_syn()
    syn_ack = rdpudp.build_syn_ack(rdpudp.parse_syn(syn))
    data = struct.pack("!IHH", 5, 64, 0x000C) + bytes(40)  # FEC header: ACK | DATA
    t = 1_700_000_000.0
    frames = []
    if with_syn:
        frames += [(t, g.udp_frame(c, 50000, s, 3389, syn)), (t + 0.01, g.udp_frame(s, 3389, c,
                   50000, syn_ack))]  # fmt: skip
    for i in range(10):
        frames.append((t + 1 + i, g.udp_frame(c, 50000, s, 3389, data)))
        frames.append((t + 1.5 + i, g.udp_frame(s, 3389, c, 50000, data)))
    return frames


def test_udp_flow_counts_every_datagram_and_lasts_to_the_last(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, udp_flow())
    assert conn.transport == "udp" and conn.packets == (11, 11)
    assert 10 < conn.to_dict()["duration_s"] < 11
    assert judge(conn).outcome == "rdp" and conn.udp_syn_ack is not None


def test_udp_flow_without_its_syn_is_reported(tmp_path: Path) -> None:
    (conn,) = read(tmp_path, udp_flow(with_syn=False))
    assert conn.start_missed and conn.packets == (10, 10) and conn.server_port == 3389
    assert "capture.start_missed" in ids(conn) and judge(conn).outcome == "rdp"
