"""The self-consistency checker: each rule fires on a report that contradicts itself, stays quiet
on one that does not, and classify() raises under RDPROBE_CHECK_CONSISTENCY=1 (set by conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from test_classify import WIN10_NLA, XRDP_NEGOTIATE, confirm_attempt, observe
from test_judges import leaf, tls

from rdprobe.analysis import consistency
from rdprobe.analysis.classify import CHECK_ENV, classify
from rdprobe.analysis.findings import finding
from rdprobe.analysis.observations import TargetObservation
from rdprobe.analysis.severity import ExitCode
from rdprobe.protocol.x224 import NegotiationResponse as Rsp

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def with_findings(report, *ids, **evidence):
    return replace(report, findings=(*report.findings, *(finding(i, **evidence) for i in ids)))


def hybrid_only_observation() -> TargetObservation:
    obs = TargetObservation("srv", 3389, "127.0.0.1", NOW)
    obs.attempts.append(confirm_attempt("SSL|HYBRID", 3, Rsp(2, 1)))
    return obs


def test_the_suite_runs_with_the_check_on():
    assert os.environ.get(CHECK_ENV) == "1"


def test_consistent_reports_have_no_violation():
    for answers in (WIN10_NLA, XRDP_NEGOTIATE):
        report = classify(observe(answers), NOW)
        assert consistency.violations(report) == []
        assert consistency.violations(report, exit_code=1 if report.worst else 0) == []


def test_one_hybrid_connection_says_nla_was_used_not_that_it_is_optional():
    report = classify(hybrid_only_observation(), NOW)
    assert "neg.nla_used" in {f.id for f in report.findings}
    assert "neg.nla_not_required" not in {f.id for f in report.findings}
    bad = with_findings(report, "neg.nla_not_required", host="srv", port=3389)
    (problem,) = consistency.violations(bad)
    assert "NLA not required" in problem and "HYBRID" in problem


def test_rdp_security_only_beside_a_tls_selection():
    report = classify(observe(XRDP_NEGOTIATE), NOW)
    bad = with_findings(report, "neg.rdp_security_only", host="srv", port=3389)
    (problem,) = consistency.violations(bad)
    assert "RDP Security only" in problem


def test_certificate_facts_and_findings_must_agree_at_now():
    obs = TargetObservation("srv.example.test", 3389, "127.0.0.1", NOW)
    obs.attempts.append(confirm_attempt("SSL", 1, Rsp(1, 1)))
    obs.tls = tls(leaf())
    good = classify(obs, NOW)
    assert consistency.violations(good) == []
    # the finding of a later time on the report of this time: expired vs notAfter
    expired = with_findings(good, "cert.expired", not_after="x", host="srv", port=3389)
    assert any("notAfter" in p for p in consistency.violations(expired))
    # the same report judged later lacks the finding it should carry
    later = replace(good, now=NOW + timedelta(days=401))  # leaf() expires after 400 days
    assert any("cert.expired" in p for p in consistency.violations(later))
    # a certificate finding without any certificate
    bare = with_findings(classify(observe(XRDP_NEGOTIATE), NOW), "cert.self_signed", subject="x")
    assert any("without a certificate" in p for p in consistency.violations(bare))


def test_exit_code_is_the_function_of_the_worst_finding():
    report = classify(observe(WIN10_NLA), NOW)
    assert report.rdp and not report.worst
    assert consistency.violations(report, exit_code=ExitCode.OK) == []
    (problem,) = consistency.violations(report, exit_code=ExitCode.PROBLEM)
    assert "exit code 1" in problem


def test_classify_raises_on_a_contradiction(monkeypatch):
    monkeypatch.setattr(
        consistency, "RULES", (*consistency.RULES, lambda r: ["always contradicts"])
    )
    with pytest.raises(AssertionError, match="always contradicts"):
        classify(observe(WIN10_NLA), NOW)
    monkeypatch.setenv(CHECK_ENV, "0")
    classify(observe(WIN10_NLA), NOW)  # the switch is off: no check


def test_subprocesses_inherit_the_switch():
    code = "import os; print(os.environ.get('RDPROBE_CHECK_CONSISTENCY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "1"
