"""Negotiation verdicts true to the wire and to themselves (issue 9), judged from observations.

The matrices are the answers real servers gave (FreeRDP shadow with no /sec and with /sec:ext,
xrdp security_layer=tls); the rules of rdprobe.analysis.consistency_rules must find every report
here consistent, and must fire on the contradictions rdprobe used to print. (With
RDPROBE_CHECK_CONSISTENCY=1, as the suite runs, classify() itself raises on a contradiction.)
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_classify import LEGACY, NOW, XRDP_NEGOTIATE, ids, observe

from rdprobe.analysis import consistency_rules as rules
from rdprobe.analysis.classify import classify
from rdprobe.analysis.consistency import violations
from rdprobe.analysis.facts import McsFacts
from rdprobe.analysis.findings import finding
from rdprobe.analysis.observations import Attempt, ReplyKind, TargetObservation, TcpOutcome
from rdprobe.analysis.ports import find_view, port_summary
from rdprobe.analysis.severity import Severity
from rdprobe.emulate.profiles import _ISO_CC, _ISO_DT, _mutated_confirm
from rdprobe.live.negotiate import MATRIX
from rdprobe.protocol import x224
from rdprobe.protocol.x224 import NegotiationFailure as Fail
from rdprobe.protocol.x224 import NegotiationResponse as Rsp

#: freerdp-shadow-cli without /sec, measured: TLS selected for every TLS offer (flags 0x03), RDP
#: for RDP and for the request without negotiation, SSL_NOT_ALLOWED_BY_SERVER to RDSTLS alone.
SHADOW_NO_SEC = {
    11: Rsp(1, 3),
    0: Rsp(0, 3),
    1: Rsp(1, 3),
    3: Rsp(1, 3),
    4: Fail(2),
    None: Rsp(0, 3),
}
#: freerdp-shadow-cli /sec:ext, measured: SSL_REQUIRED_BY_SERVER to every request.
SHADOW_EXT = dict.fromkeys([11, 0, 1, 3, 4, None], Fail(1))
#: xrdp security_layer=tls, measured: a bare confirm to the request without negotiation.
XRDP_TLS = {11: Rsp(1, 1), 0: Fail(1), 1: Rsp(1, 1), 3: Rsp(1, 1), 4: Fail(1), None: LEGACY}


def consistent(report) -> None:
    assert violations(report) == []  # the one checker, with the negotiation rules in it


def test_one_rdstls_failure_does_not_outvote_the_matrix():
    report = classify(observe(SHADOW_NO_SEC), NOW)
    s = report.setting
    assert "neg.rdp_security_only" not in ids(report)
    assert s.security_layer == "Negotiate" and s.tls_supported is True
    assert s.rdstls_supported is False
    assert s.legacy_clients_allowed is True  # a confirm selecting PROTOCOL_RDP lets them in
    assert "neg.legacy_clients_refused" not in ids(report)
    consistent(report)


def test_rdp_only_server_still_refuses_tls():
    rdp_only = {11: Fail(2), 0: Rsp(0), 1: Fail(2), 3: Fail(2), 4: Fail(2), None: LEGACY}
    report = classify(observe(rdp_only), NOW)
    assert "neg.rdp_security_only" in ids(report)
    consistent(report)


def test_a_listener_that_refuses_every_client_is_an_error():
    report = classify(observe(SHADOW_EXT), NOW)
    s = report.setting
    assert s.accepts_nothing is True
    assert s.summary.startswith("accepts no client")
    assert "SSL_REQUIRED_BY_SERVER" in s.summary
    f = next(f for f in report.findings if f.id == "neg.accepts_nothing")
    assert f.severity is Severity.ERROR and "SSL_REQUIRED_BY_SERVER" in f.title
    assert "/sec:ext" in f.spec.cause and f.spec.fix
    assert report.worst is Severity.ERROR
    # nothing else is claimed from answers that contradict their requests
    assert s.nla_required is None and s.tls_supported is None
    assert not {"neg.nla_not_required", "neg.legacy_clients_refused"} & ids(report)
    consistent(report)


def test_refusing_only_some_clients_is_not_accepting_nothing():
    nla = {11: Rsp(8, 0x1F), 0: Fail(5), 1: Fail(5), 3: Rsp(2, 0x1F), 4: Fail(5), None: Fail(5)}
    report = classify(observe(nla), NOW)
    assert report.setting.accepts_nothing is False
    assert "neg.accepts_nothing" not in ids(report)


def _with_mcs(obs, error):
    obs.mcs = McsFacts("no negotiation", 0, 0x1B, error=error)
    return obs


def test_mcs_refusal_after_a_bare_confirm_is_said_once():
    error = "socket error: [Errno 104] Connection reset by peer"
    report = classify(_with_mcs(observe(XRDP_TLS), error=error), NOW)
    s = report.setting
    assert s.legacy_clients_allowed is False
    assert "get a Connection Confirm" not in s.summary
    assert "refused after their Connection Confirm, at the MCS stage" in s.summary
    assert [f.id for f in report.findings].count("neg.legacy_clients_refused") == 1
    f = next(f for f in report.findings if f.id == "neg.legacy_clients_refused")
    assert f.evidence["error"] == error and f.evidence["stage"] == "mcs"
    consistent(report)


def test_mcs_timeout_after_a_bare_confirm_is_no_refusal():
    report = classify(_with_mcs(observe(XRDP_TLS), error="timeout: no MCS reply"), NOW)
    assert report.setting.legacy_clients_allowed is True
    assert "neg.legacy_clients_refused" not in ids(report)
    assert "rdpsec.mcs_failed" in ids(report)
    consistent(report)


def test_bare_confirm_without_mcs_stage_says_confirm():
    report = classify(observe(XRDP_TLS), NOW)
    assert "get a Connection Confirm" in report.setting.summary
    assert "neg.legacy_clients_refused" not in ids(report)
    consistent(report)


@pytest.mark.parametrize(
    "failed",
    [
        Attempt("no negotiation", None, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.RESET),
        Attempt("no negotiation", None, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.CLOSED),
        Attempt("no negotiation", None, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.SILENT),
        Attempt("no negotiation", None, TcpOutcome.TIMEOUT, "no answer within 2.0 s"),
        Attempt("no negotiation", None, TcpOutcome.REFUSED, "refused"),
    ],
    ids=["reset", "closed", "silent", "tcp-timeout", "tcp-refused"],
)
def test_no_answer_to_the_legacy_request_is_unknown_and_intermittent(failed):
    obs = observe(XRDP_NEGOTIATE)
    obs.attempts[-1] = failed
    report = classify(obs, NOW)
    s = report.setting
    assert s.legacy_clients_allowed is None
    assert "clients without negotiation" not in s.summary
    assert "neg.legacy_clients_refused" not in ids(report)
    assert "tcp.intermittent" in ids(report)
    assert s.answers["no negotiation"].startswith("no answer")
    consistent(report)


@pytest.mark.parametrize(
    ("label", "field"), [("RDSTLS", "rdstls_supported"), ("RDP", "standard_rdp_allowed")]
)
def test_no_answer_to_other_requests_leaves_their_verdict_unknown(label, field):
    obs = observe(XRDP_NEGOTIATE)
    i = next(i for i, a in enumerate(obs.attempts) if a.label == label)
    req = obs.attempts[i].requested
    obs.attempts[i] = Attempt(label, req, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.RESET)
    report = classify(obs, NOW)
    assert getattr(report.setting, field) is None
    consistent(report)


def test_a_disconnect_to_the_legacy_request_is_an_answer():
    obs = observe(XRDP_NEGOTIATE)
    ultimatum = bytes.fromhex("0300000902f0802180")
    obs.attempts[-1] = Attempt(
        "no negotiation", None, TcpOutcome.CONNECTED, None, 1.0, 2.0, ReplyKind.TPDU,
        ultimatum, x224.parse_server_tpdu(ultimatum),
    )  # fmt: skip
    report = classify(obs, NOW)
    assert report.setting.legacy_clients_allowed is False
    assert "neg.legacy_clients_refused" in ids(report)
    consistent(report)


def _not_tpkt(data: bytes) -> TargetObservation:
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(
        Attempt("SSL|HYBRID|HYBRID_EX", 11, TcpOutcome.CONNECTED, None, 1.0, 2.0,
                ReplyKind.NOT_TPKT, data)
    )  # fmt: skip
    return obs


def test_mutated_confirm_is_unknown_bytes_not_a_service():
    report = classify(_not_tpkt(_mutated_confirm()), NOW)
    assert report.outcome == "not_rdp"
    (f,) = [f for f in report.findings if f.id == "service.unknown"]
    assert f.title.startswith("Not RDP, unknown bytes on port 3389: \\x13\\x00\\x00\\x13")
    assert "service.conflict" not in ids(report)
    consistent(report)


def test_a_real_banner_is_still_a_named_service():
    report = classify(_not_tpkt(b"SSH-2.0-OpenSSH_9.2p1\r\n"), NOW)
    assert report.outcome == "wrong_service"
    assert "service.conflict" in ids(report)


def _iso_observation(mcs_reply: bytes) -> TargetObservation:
    obs = TargetObservation("plc", 102, "127.0.0.1", NOW)
    for req in MATRIX:
        obs.attempts.append(
            Attempt(req.label, req.requested, TcpOutcome.CONNECTED, None, 1.0, 2.0,
                    ReplyKind.TPDU, _ISO_CC, x224.parse_server_tpdu(_ISO_CC))
        )  # fmt: skip
    error = "malformed reply: expected MCS Connect-Response or ultimatum, got 3203"
    obs.mcs = McsFacts("RDP", 0, 0x1B, error=error, raw_hex=mcs_reply.hex())
    return obs


def test_iso_transport_answering_mcs_with_s7comm_is_not_rdp():
    report = classify(_iso_observation(_ISO_DT), NOW)
    assert report.outcome == "x224_not_rdp" and not report.rdp
    assert report.setting is None
    (f,) = [f for f in report.findings if f.id == "x224.not_rdp"]
    assert "S7comm" in f.title and f.severity is Severity.ERROR
    assert not {"rdp.answered", "neg.legacy_server", "rdpsec.mcs_failed"} & ids(report)
    consistent(report)


def test_legacy_server_refusing_mcs_with_an_ultimatum_is_still_rdp():
    ultimatum = bytes.fromhex("0300000902f0802180")
    report = classify(_iso_observation(ultimatum), NOW)
    assert report.outcome == "rdp"
    assert "neg.legacy_server" in ids(report)


def test_find_view_shows_the_conflict_and_where_rdp_went():
    http = _not_tpkt(b"HTTP/1.1 400 Bad Request\r\nServer: Microsoft-IIS/10.0\r\n\r\n")
    refused = TargetObservation("srv", 80, "127.0.0.1", NOW)
    refused.attempts.append(Attempt("SSL|HYBRID|HYBRID_EX", 11, TcpOutcome.REFUSED))
    reports = [
        classify(o, NOW)
        for o in (observe(XRDP_NEGOTIATE, port=443), http, observe(XRDP_NEGOTIATE, port=3390),
                  refused)
    ]  # fmt: skip
    shown = find_view(port_summary(reports))
    assert [r.observation.port for r in shown] == [3389, 443, 3390]
    first = shown[0]
    assert first.outcome == "wrong_service" and "Microsoft-IIS" in first.service.detail
    moved = next(f for f in first.findings if f.id == "rdp.found_elsewhere")
    assert moved.evidence["ports"] == "443, 3390"


def test_find_view_without_rdp_keeps_one_report():
    refused = TargetObservation("srv", 3390, "127.0.0.1", NOW)
    refused.attempts.append(Attempt("SSL|HYBRID|HYBRID_EX", 11, TcpOutcome.REFUSED))
    shown = find_view(port_summary([classify(refused, NOW)]))
    assert len(shown) == 1 and "rdp.not_found" in ids(shown[0])


# -- the rules fire on the contradictions rdprobe used to print ----------------------------------


def _add(report, fid, **evidence):
    return replace(report, findings=(*report.findings, finding(fid, **evidence)))


def test_checker_catches_rdp_security_only_beside_tls():
    report = classify(observe(SHADOW_NO_SEC), NOW)
    assert violations(_add(report, "neg.rdp_security_only"))  # the checker's own rule
    no_tls = replace(report, setting=replace(report.setting, tls_supported=False))
    assert rules.rule_setting_tls_beside_tls_selection(no_tls)


def test_rule_catches_legacy_clients_said_two_ways():
    report = classify(observe(XRDP_TLS), NOW)  # summary: they get a Connection Confirm
    assert rules.rule_legacy_clients_one_voice(_add(report, "neg.legacy_clients_refused"))
    refused = classify(_with_mcs(observe(XRDP_TLS), error="reset"), NOW)
    assert rules.rule_legacy_clients_one_voice(_add(refused, "neg.legacy_clients_refused"))


def test_rule_catches_a_listener_accepting_nothing_at_exit_0():
    report = classify(observe(SHADOW_EXT), NOW)
    quiet = replace(
        report,
        findings=tuple(f for f in report.findings if f.severity < Severity.WARNING),
        setting=replace(report.setting, accepts_nothing=False),
    )
    assert len(rules.rule_accepting_nothing_is_a_problem(quiet)) == 2


def test_rule_catches_a_verdict_from_a_reset():
    obs = observe(XRDP_NEGOTIATE)
    obs.attempts[-1] = Attempt(
        "no negotiation", None, TcpOutcome.CONNECTED, None, 1.0, None, ReplyKind.RESET
    )
    report = classify(obs, NOW)
    bad = replace(report, setting=replace(report.setting, legacy_clients_allowed=False))
    assert rules.rule_no_verdict_without_an_answer(bad)


def test_rule_catches_rdp_answered_for_unknown_bytes():
    report = classify(_not_tpkt(_mutated_confirm()), NOW)
    assert rules.rule_rdp_answered_only_for_rdp(_add(report, "rdp.answered", port=3389))


def test_every_classifier_matrix_is_consistent():
    from test_classify import NO_CERT, RDP_ONLY, TLS_ONLY, W2003, WIN10_NLA

    for answers in (WIN10_NLA, XRDP_NEGOTIATE, TLS_ONLY, RDP_ONLY, W2003, NO_CERT, SHADOW_NO_SEC,
                    SHADOW_EXT, XRDP_TLS):  # fmt: skip
        consistent(classify(observe(answers), NOW))


def test_one_confirm_without_negotiation_data_does_not_make_a_negotiating_server_legacy():
    """Found by scripts/fuzz.py (x224-mutated): one confirm carried no negotiation data (its
    RDP_NEG_RSP type byte was mutated) while the others negotiated; the setting said 'legacy
    server, RDP only' beside a TLS selection."""
    matrix = {**XRDP_NEGOTIATE, 11: LEGACY}
    report = classify(observe(matrix), NOW)
    assert report.setting is not None
    assert report.setting.legacy_server is False
    assert "neg.legacy_server" not in ids(report)
    assert report.setting.tls_supported is True
    consistent(report)
    every_answer_legacy = {req: LEGACY for req in XRDP_NEGOTIATE}
    assert classify(observe(every_answer_legacy), NOW).setting.legacy_server is True
