"""Issue 9, trust severities: a self-signed certificate and one from an unknown CA get the same
severity for the same server (warning on a domain member, information elsewhere), and the
consistency rules catch a report whose trust or name-lookup findings contradict its verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from test_classify import confirm_attempt
from test_consistency import with_findings
from test_judges import NO_ROOTS, challenge, leaf, nla, tls

from rdprobe.analysis import consistency
from rdprobe.analysis.classify import classify
from rdprobe.analysis.facts import NameLookup
from rdprobe.analysis.judges import untrusted_finding_id
from rdprobe.analysis.observations import TargetObservation
from rdprobe.analysis.severity import Severity
from rdprobe.protocol.x224 import NegotiationResponse as Rsp

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MEMBER = nla(challenge(dns_domain="corp.example", dns_computer="srv.corp.example",
                       nb_domain="CORP", nb_computer="SRV"))  # fmt: skip
WORKGROUP = nla(challenge(dns_domain="SRV", dns_computer="SRV", nb_domain="SRV", nb_computer="SRV"))
TRUST_IDS = {"cert.self_signed", "cert.untrusted", "cert.untrusted_here"}


def report_for(cert, *, member=None, roots=NO_ROOTS, target="srv.example.test", lookups=()):
    obs = TargetObservation(target, 3389, "127.0.0.1", NOW)
    obs.attempts.append(confirm_attempt("SSL", 1, Rsp(1, 1)))
    obs.tls = replace(tls(cert, target=target), name_lookups=lookups)
    if member is not None:
        obs.nla = member
    return classify(obs, NOW, roots)


def trust_findings(report):
    return {f.id: f.severity for f in report.findings if f.id in TRUST_IDS}


SELF_SIGNED = leaf(self_signed=True, issuer="CN=srv")
UNKNOWN_CA = leaf(self_signed=False, issuer="CN=Corp Issuing CA")


@pytest.mark.parametrize(("member", "severity"), [(MEMBER, Severity.WARNING),
                                                  (WORKGROUP, Severity.INFO),
                                                  (None, Severity.INFO)])  # fmt: skip
def test_self_signed_and_unknown_ca_get_the_same_severity(member, severity):
    ours = report_for(SELF_SIGNED, member=member)
    theirs = report_for(UNKNOWN_CA, member=member)
    assert ours.certificate.trusted is False and theirs.certificate.trusted is False
    assert max(trust_findings(ours).values()) is severity
    assert max(trust_findings(theirs).values()) is severity
    assert consistency.violations(ours) == [] and consistency.violations(theirs) == []


def test_the_one_trust_finding_per_cause_and_membership():
    assert set(trust_findings(report_for(SELF_SIGNED, member=MEMBER))) == {
        "cert.self_signed", "cert.untrusted"
    }  # fmt: skip
    assert set(trust_findings(report_for(UNKNOWN_CA, member=MEMBER))) == {"cert.untrusted"}
    assert set(trust_findings(report_for(SELF_SIGNED))) == {"cert.self_signed"}
    assert set(trust_findings(report_for(UNKNOWN_CA))) == {"cert.untrusted_here"}
    # without trust roots nothing is judged: the self-signed fact alone
    assert set(trust_findings(report_for(SELF_SIGNED, member=MEMBER, roots=None))) == {
        "cert.self_signed"
    }
    assert trust_findings(report_for(UNKNOWN_CA, member=MEMBER, roots=None)) == {}


def test_untrusted_finding_id_reads_the_verdict_only():
    report = report_for(UNKNOWN_CA, member=MEMBER)
    trusted = replace(report.certificate, trusted=True)
    unknown = replace(report.certificate, trusted=None)
    assert untrusted_finding_id(report.observation, UNKNOWN_CA, report.certificate) == (
        "cert.untrusted"
    )
    assert untrusted_finding_id(report.observation, UNKNOWN_CA, trusted) is None
    assert untrusted_finding_id(report.observation, UNKNOWN_CA, unknown) is None


# -- the consistency rules fire on contradictions and stay quiet otherwise -----------------------


def test_trust_rule_fires_on_an_untrusted_finding_beside_a_trusted_verdict():
    report = report_for(UNKNOWN_CA, member=MEMBER)
    trusted = replace(
        report,
        certificate=replace(report.certificate, trusted=True, trust_reason="chains"),
        findings=tuple(f for f in report.findings if f.id != "cert.untrusted"),
    )
    assert consistency.violations(trusted) == []
    bad = with_findings(trusted, "cert.untrusted", reason="x", subject="s")
    (problem,) = consistency.violations(bad)
    assert "trusted certificate" in problem


def test_trust_rule_fires_on_a_missing_or_wrong_severity_finding():
    member = report_for(UNKNOWN_CA, member=MEMBER)
    silent = replace(member, findings=tuple(f for f in member.findings if f.id != "cert.untrusted"))
    (problem,) = consistency.violations(silent)
    assert "reported as nothing" in problem
    # the information-level finding on a domain member: the severity rule broken
    wrong = with_findings(silent, "cert.untrusted_here", reason="x", subject="s")
    (problem,) = consistency.violations(wrong)
    assert "cert.untrusted_here" in problem and "cert.untrusted'" in problem
    # both at once
    both = with_findings(member, "cert.untrusted_here", reason="x", subject="s")
    assert consistency.violations(both)
    # a self-signed certificate in a workgroup carries its own finding, and no other
    workgroup = report_for(SELF_SIGNED)
    assert consistency.violations(workgroup) == []
    extra = with_findings(workgroup, "cert.untrusted_here", reason="x", subject="s")
    assert any("self-signed" in p for p in consistency.violations(extra))
    gone = replace(
        workgroup, findings=tuple(f for f in workgroup.findings if f.id != "cert.self_signed")
    )
    assert any("self-signed" in p for p in consistency.violations(gone))


def test_names_rule_fires_when_the_finding_and_the_lookups_disagree():
    ip_leaf = leaf(san_dns=("other.example.test",))
    here = (NameLookup("other.example.test", ("127.0.0.1",), None, "--resolve"),)
    away = (NameLookup("other.example.test", ("10.9.9.9",), None, "--resolve"),)
    pointing_here = report_for(ip_leaf, target="127.0.0.1", lookups=here)
    pointing_away = report_for(ip_leaf, target="127.0.0.1", lookups=away)
    assert pointing_here.certificate.names_point_here is True
    assert pointing_away.certificate.names_point_here is False
    assert "cert.names_elsewhere" in {f.id for f in pointing_away.findings}
    assert consistency.violations(pointing_here) == []
    assert consistency.violations(pointing_away) == []
    bad = with_findings(pointing_here, "cert.names_elsewhere", address="127.0.0.1", where="x")
    (problem,) = consistency.violations(bad)
    assert "names_point_here=True" in problem
    dropped = replace(
        pointing_away,
        findings=tuple(f for f in pointing_away.findings if f.id != "cert.names_elsewhere"),
    )
    (problem,) = consistency.violations(dropped)
    assert "names_point_here=False" in problem
