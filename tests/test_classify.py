"""The classifier: observations in, outcome / setting / findings out (pure, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.analysis.findings import CATALOGUE
from rdprobe.analysis.observations import (
    Attempt,
    RepeatStats,
    ReplyKind,
    ServiceGuess,
    TargetObservation,
    TcpOutcome,
)
from rdprobe.analysis.ports import port_summary
from rdprobe.analysis.severity import Severity
from rdprobe.live.negotiate import MATRIX
from rdprobe.protocol import x224
from rdprobe.protocol.x224 import NegotiationFailure as Fail
from rdprobe.protocol.x224 import NegotiationResponse as Rsp

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LEGACY = "legacy"


def confirm_attempt(label, requested, answer):
    cc = x224.build_confirm(None if answer == LEGACY else answer)
    return Attempt(
        label,
        requested,
        TcpOutcome.CONNECTED,
        None,
        1.0,
        2.0,
        ReplyKind.TPDU,
        cc,
        x224.parse_server_tpdu(cc),
    )


def observe(answers, port=3389):
    """answers: requested -> Rsp / Fail / LEGACY, for each row of the matrix."""
    obs = TargetObservation("srv", port, "127.0.0.1", NOW)
    for req in MATRIX:
        obs.attempts.append(confirm_attempt(req.label, req.requested, answers[req.requested]))
    return obs


def ids(report):
    return {f.id for f in report.findings}


WIN10_NLA = {  # HYBRID_REQUIRED to RDP and SSL; HYBRID_EX when offered (vector flags 0x1f)
    11: Rsp(8, 0x1F),
    0: Fail(5),
    1: Fail(5),
    3: Rsp(2, 0x1F),
    4: Fail(5),
    None: LEGACY,
}
XRDP_NEGOTIATE = {
    11: Rsp(1, 1),
    0: Rsp(0, 1),
    1: Rsp(1, 1),
    3: Rsp(1, 1),
    4: Rsp(0, 1),
    None: LEGACY,
}
TLS_ONLY = {11: Rsp(1, 0xF), 0: Fail(1), 1: Rsp(1, 0xF), 3: Rsp(1, 0xF), 4: Fail(1), None: Fail(1)}
RDP_ONLY = {11: Fail(2), 0: Rsp(0), 1: Fail(2), 3: Fail(2), 4: Fail(2), None: LEGACY}
W2003 = dict.fromkeys([11, 0, 1, 3, 4, None], LEGACY)
NO_CERT = {11: Fail(3), 0: Rsp(0), 1: Fail(3), 3: Fail(3), 4: Fail(3), None: LEGACY}


@pytest.mark.parametrize(
    ("answers", "layer", "expect", "absent"),
    [
        (WIN10_NLA, "Negotiate or SSL", {"neg.nla_required"}, {"neg.nla_not_required"}),
        (XRDP_NEGOTIATE, "Negotiate", {"neg.nla_not_required"}, {"neg.nla_required"}),
        (TLS_ONLY, "SSL", {"neg.tls_required", "neg.legacy_clients_refused"}, set()),
        (RDP_ONLY, "RDP", {"neg.rdp_security_only", "neg.nla_not_required"}, set()),
        (W2003, "RDP", {"neg.legacy_server", "neg.nla_not_required"}, {"neg.tls_required"}),
        (NO_CERT, "SSL or Negotiate", {"neg.ssl_cert_not_on_server"}, set()),
    ],
)
def test_setting_inferred_from_the_matrix(answers, layer, expect, absent):
    report = classify(observe(answers), NOW)
    assert report.outcome == "rdp"
    assert report.setting.security_layer == layer
    assert expect <= ids(report)
    assert not (absent & ids(report))


def test_win10_nla_facts():
    s = classify(observe(WIN10_NLA), NOW).setting
    assert s.nla_required and s.hybrid_ex_supported and s.tls_supported
    assert s.standard_rdp_allowed is False
    assert s.legacy_clients_allowed is True
    assert s.answers["RDP"] == "failure HYBRID_REQUIRED_BY_SERVER"


def test_xrdp_hybrid_request_answered_with_ssl_is_not_nla():
    s = classify(observe(XRDP_NEGOTIATE), NOW).setting
    assert s.nla_supported is False and s.nla_required is False


@pytest.mark.parametrize(
    ("tcp", "finding_id"),
    [
        (TcpOutcome.REFUSED, "tcp.refused"),
        (TcpOutcome.TIMEOUT, "tcp.timeout"),
        (TcpOutcome.HOST_UNREACHABLE, "tcp.host_unreachable"),
        (TcpOutcome.NET_UNREACHABLE, "tcp.net_unreachable"),
        (TcpOutcome.ADMIN_PROHIBITED, "tcp.admin_prohibited"),
        (TcpOutcome.ERROR, "tcp.error"),
    ],
)
def test_each_tcp_outcome_has_its_finding(tcp, finding_id):
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(Attempt("SSL", 1, tcp, "boom"))
    report = classify(obs, NOW)
    assert report.outcome == str(tcp)
    assert ids(report) == {finding_id}
    assert report.worst >= Severity.ERROR


@pytest.mark.parametrize(
    ("kind", "data", "finding_id"),
    [
        (ReplyKind.RESET, b"", "tcp.reset_before_reply"),
        (ReplyKind.CLOSED, b"", "tcp.closed_before_reply"),
        (ReplyKind.SILENT, b"", "tcp.silent"),
        (ReplyKind.TRUNCATED, b"\x03\x00\x00\x13\x0e", "x224.truncated"),
        (ReplyKind.OVERSIZED, b"\x03\x00\xff\xff", "x224.oversized"),
        (ReplyKind.MALFORMED, b"\x03\x00\x00\x07\x02\x70\x00", "x224.malformed"),
        (ReplyKind.NOT_TPKT, b"SSH-2.0-OpenSSH_9.2\r\n", "service.conflict"),
        (ReplyKind.NOT_TPKT, b"\x00\x9f\x88garbage", "service.unknown"),
    ],
)
def test_each_reply_kind_has_its_finding(kind, data, finding_id):
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(Attempt("SSL", 1, TcpOutcome.CONNECTED, None, 1.0, None, kind, data))
    report = classify(obs, NOW)
    assert finding_id in ids(report)
    assert not report.rdp


def test_oversized_evidence_names_the_length():
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(
        Attempt(
            "SSL", 1, TcpOutcome.CONNECTED, None, 1.0, 1.0, ReplyKind.OVERSIZED, b"\x03\x00\xff\xff"
        )
    )
    (f,) = classify(obs, NOW).findings
    assert f.evidence["length"] == 65535
    assert "65535" in f.title


def test_closed_port_that_speaks_tls_is_a_conflict():
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(Attempt("SSL", 1, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.CLOSED))
    obs.direct_tls = ServiceGuess("TLS", "TLSv1.3, TLS_AES_256_GCM_SHA384")
    report = classify(obs, NOW)
    assert report.outcome == "wrong_service"
    assert report.service.name == "TLS"
    (f,) = report.findings
    assert f.id == "service.conflict" and "TLS" in f.title


def test_http_400_then_tls_is_https():
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(
        Attempt(
            "SSL",
            1,
            TcpOutcome.CONNECTED,
            None,
            1.0,
            1.0,
            ReplyKind.NOT_TPKT,
            b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\n\r\n",
        )
    )
    obs.direct_tls = ServiceGuess("HTTPS", "HTTP/1.1 200 OK; Server: nginx; TLSv1.3")
    assert classify(obs, NOW).service.name == "HTTPS"


def test_dns_failure():
    obs = TargetObservation("nope.invalid", 3389, None, NOW, dns_error="Name or service not known")
    report = classify(obs, NOW)
    assert report.outcome == "dns_failure"
    assert ids(report) == {"dns.failure"}


def test_mixed_answers_are_intermittent():
    obs = observe(XRDP_NEGOTIATE)
    obs.attempts[2] = Attempt("SSL", 1, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.RESET)
    report = classify(obs, NOW)
    assert "tcp.intermittent" in ids(report)


def test_repeat_stats_with_failures_are_intermittent():
    obs = observe(XRDP_NEGOTIATE)
    obs.repeat = RepeatStats(9, {"rdp": 6, "reset": 3}, {}, {})
    f = next(f for f in classify(obs, NOW).findings if f.id == "tcp.intermittent")
    assert f.title == "Intermittent: 3 of 9 attempts failed"


def test_port_summary_finds_moved_rdp():
    refused = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    refused.attempts.append(Attempt("SSL", 1, TcpOutcome.REFUSED))
    moved = observe(XRDP_NEGOTIATE, port=3390)
    reports = port_summary([classify(refused, NOW), classify(moved, NOW)])
    assert "rdp.found_elsewhere" in ids(reports[0])
    assert "3390" in next(f.title for f in reports[0].findings if f.id == "rdp.found_elsewhere")
    nothing = port_summary([classify(refused, NOW)])
    assert "rdp.not_found" in ids(nothing[0])


def test_catalogue_entries_are_complete():
    for spec in CATALOGUE.values():
        assert spec.title and len(spec.cause) > 30 and spec.fix
        assert spec.id.count(".") == 1
