"""`rdprobe pcap` against Zeek's own RDP test traces: every rdp.log / ssl.log / x509.log field Zeek
reports for a connection must equal rdprobe's value (captures/zeek/PROVENANCE.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.capture.analyze import analyze, judge
from rdprobe.capture.connection import server_observation
from rdprobe.capture.zeek_names import zeek_fields

ROOT = Path(__file__).resolve().parent.parent / "captures/zeek"
BASELINE = ROOT / "baseline"
RDP_FIELDS = (
    "cookie", "result", "security_protocol", "client_channels", "keyboard_layout",
    "client_build", "client_name", "client_dig_product_id", "desktop_width", "desktop_height",
    "requested_color_depth", "cert_type", "cert_count", "cert_permanent", "encryption_level",
    "encryption_method",
)  # fmt: skip
ZEEK_TLS = {"TLSv1": "TLSv10", "TLSv1.1": "TLSv11", "TLSv1.2": "TLSv12", "TLSv1.3": "TLSv13"}


def _unescape(value: str) -> str | None:
    """Zeek's ASCII log escaping: '-' unset, '(empty)' empty, '\\\\' and '\\xNN' escapes."""
    if value == "-":
        return None
    if value == "(empty)":
        return ""
    return re.sub(
        r"\\(\\|x[0-9a-fA-F]{2})",
        lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)),
        value,
    )


def zeek_log(trace: str, log: str) -> list[dict[str, str | None]]:
    lines = (BASELINE / trace / log).read_text().splitlines()
    fields = next(line for line in lines if line.startswith("#fields")).split("\t")[1:]
    return [
        dict(zip(fields, map(_unescape, line.split("\t")), strict=True))
        for line in lines
        if line and not line.startswith("#")
    ]


def _trace_file(trace: str) -> Path:
    # Zeek's baseline directory says "msthash", the trace file "mstshash"
    return ROOT / (trace.replace("no-cookie-msthash", "no-cookie-mstshash") + ".pcap")


RDP_TRACES = sorted(p.parent.name for p in BASELINE.glob("*/rdp.log"))
SSL_TRACES = sorted(p.parent.name for p in BASELINE.glob("*/ssl.log"))


def _by_endpoints(trace: str):
    connections, warnings = analyze(_trace_file(trace))
    assert warnings == []
    return {
        (c.client_address, str(c.client_port), c.server_address, str(c.server_port)): c
        for c in connections
        if c.transport == "tcp"
    }


def _key(row: dict) -> tuple:
    return (row["id.orig_h"], row["id.orig_p"], row["id.resp_h"], row["id.resp_p"])


def test_every_baseline_with_rdp_log_has_its_trace() -> None:
    assert len(RDP_TRACES) >= 5
    for trace in RDP_TRACES:
        assert _trace_file(trace).is_file(), trace


@pytest.mark.parametrize("trace", RDP_TRACES)
def test_rdp_log_fields_equal(trace: str) -> None:
    conns = _by_endpoints(trace)
    rows = zeek_log(trace, "rdp.log")
    assert len(conns) == len(rows)
    for row in rows:
        ours = zeek_fields(conns[_key(row)])
        for name in RDP_FIELDS:
            assert ours[name] == row[name], (trace, name, ours[name], row[name])


@pytest.mark.parametrize("trace", SSL_TRACES)
def test_ssl_log_facts_equal(trace: str) -> None:
    conns = _by_endpoints(trace)
    for row in zeek_log(trace, "ssl.log"):
        conn = conns[_key(row)]
        assert ZEEK_TLS[conn.tls_version] == row["version"]
        assert conn.tls_cipher == row["cipher"]
        tls = judge(conn).observation.stages["tls"]
        assert tls["chain"][0]["subject"] == row["subject"]
        assert tls["chain"][0]["issuer"] == row["issuer"]
        if row["server_name"] is not None:
            assert conn.sni == row["server_name"]


def test_x509_log_licensing_chain() -> None:
    (conn,) = _by_endpoints("rdp-x509").values()
    chain = conn.server_data.security.certificate
    rows = zeek_log("rdp-x509", "x509.log")
    assert [i.serial for i in chain.infos] == [r["certificate.serial"].lstrip("0") for r in rows]
    assert [i.key_bits for i in chain.infos] == [int(r["certificate.key_length"]) for r in rows]


def test_findings_match_what_check_would_say() -> None:
    conns = list(_by_endpoints("rdp-proprietary-encryption").values())
    failed, accepted = sorted(conns, key=lambda c: c.first_ts)
    assert "neg.rdp_security_only" in {f.id for f in judge(failed).findings}
    ids = {f.id for f in judge(accepted).findings}
    assert {"rdp.answered", "rdpsec.in_use", "neg.nla_not_required"} <= ids
    assert "rdpsec.corrupt_certificate" not in ids  # the proprietary signature verifies
    merged = classify(server_observation(conns), failed.started)
    assert merged.setting.security_layer == "RDP"
    assert "neg.rdp_security_only" in {f.id for f in merged.findings}
    (x509,) = _by_endpoints("rdp-x509").values()
    assert "rdpsec.low_level" in {f.id for f in judge(x509).findings}  # Client Compatible


def test_certificate_judged_at_capture_time() -> None:
    conn = next(iter(_by_endpoints("rdp-to-ssl").values()))
    at_capture = judge(conn)
    assert (
        "expired" not in at_capture.observation.stages["tls"]["chain"][0]
    )  # a verdict, not a fact
    assert at_capture.certificate.expired is False and at_capture.certificate.days_left > 0
    assert "cert.expired" not in {f.id for f in at_capture.findings}
    later = judge(conn, datetime(2030, 1, 1, tzinfo=UTC))
    assert "cert.expired" in {f.id for f in later.findings}
    assert later.certificate.expired is True


def test_rdpeudp_handshakes() -> None:
    (ok,), _ = analyze(ROOT / "rdpeudp-handshake-success.pcap")
    assert ok.transport == "udp" and ok.udp_syn_ack is not None
    assert ok.udp_syn.version == 0x0003 and ok.udp_syn.correlation_id is not None
    assert "udp.enabled" in {f.id for f in judge(ok).findings}
    (v3,), _ = analyze(ROOT / "rdpeudp2-handshake-success.pcap")
    assert v3.udp_syn.version == v3.udp_syn_ack.version == 0x0101
    (fail,), _ = analyze(ROOT / "rdpeudp-handshake-fail.pcap")
    conn_log = zeek_log("rdpeudp-handshake-fail", "conn.log")[0]
    assert fail.udp_syn_count == int(conn_log["orig_pkts"]) == 3
    assert fail.udp_syn_ack is None
    assert judge(fail).outcome == "silent"


def test_crafted_invalid_trace_does_not_break() -> None:
    # the client's first bytes are not a Connection Request: not recognised, no exception
    connections, warnings = analyze(ROOT / "rdp-invalid-length.pcap")
    assert connections == [] and warnings == []
