"""The auth stage's judge: every verdict of the server on the account becomes its finding,
from the facts alone (the same facts an emulator, a capture or a test can provide)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rdprobe.analysis.auth_facts import AuthFacts
from rdprobe.analysis.auth_judge import ERRINFO_FINDINGS, STATUS_FINDINGS, judge_auth
from rdprobe.analysis.findings import CATALOGUE
from rdprobe.analysis.observations import TargetObservation
from rdprobe.protocol.ntstatus import NtStatus, SspiHresult

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def observe(auth: dict) -> TargetObservation:
    obs = TargetObservation("ts01", 3389, "127.0.0.1", NOW)
    if auth:
        auth = {"method": "nla", "user": "a", **auth}
        obs.auth = AuthFacts.from_dict(json.loads(json.dumps(auth)))
    return obs


def judge(auth: dict) -> list[str]:
    return [f.id for f in judge_auth(observe(auth), NOW)]


def test_every_mapped_status_and_errinfo_names_a_real_code_and_finding():
    names = {s.name for s in NtStatus} | {s.name for s in SspiHresult}
    assert set(STATUS_FINDINGS) <= names
    assert set(STATUS_FINDINGS.values()) | set(ERRINFO_FINDINGS.values()) <= set(CATALOGUE)


@pytest.mark.parametrize(("status", "expected"), sorted(STATUS_FINDINGS.items()))
def test_rejections_by_status(status, expected):
    code = next(t[status].value for t in (NtStatus, SspiHresult) if status in t.__members__)
    facts = {"outcome": "rejected", "user": "CORP\\alice", "error_code": f"0x{code:08x}"}
    assert judge(facts) == [expected]


def test_an_unlisted_code_is_named_not_guessed():
    ids = judge({"outcome": "rejected", "error_code": "0xc0001234"})
    assert ids == ["auth.error_code"]
    (f,) = judge_auth(observe({"outcome": "rejected", "error_code": "0xc0001234"}), NOW)
    assert "0xc0001234" in f.title


def test_other_outcomes():
    assert judge({"outcome": "rejected_no_reason", "user": "a"}) == ["auth.rejected_no_reason"]
    assert judge({"outcome": "pubkey_mismatch", "user": "a"}) == ["auth.pubkey_mismatch"]
    assert judge({"outcome": "error", "user": "a", "error": "timeout"}) == ["auth.failed"]
    assert judge({"outcome": "not_attempted", "user": "a", "error": "no NLA"}) == [
        "auth.not_attempted"
    ]
    assert judge({}) == []


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ({"reached": "the Demand Active"}, "auth.session_reached"),
        ({"logged_on": True, "reached": "the logon notification"}, "auth.logged_on"),
        (
            {"logon_error": "LOGON_FAILED_OTHER", "logon_error_data": "LOGON_MSG_NO_PERMISSION"},
            "auth.not_authorized",
        ),
        (
            {"logon_error": "LOGON_FAILED_BAD_PASSWORD", "logon_error_data": "session 0"},
            "auth.logon_failure",
        ),
        (
            {"logon_error": "LOGON_FAILED_UPDATE_PASSWORD", "logon_error_data": "session 0"},
            "auth.password_expired",
        ),
        (
            {"logon_error": "LOGON_WARNING", "logon_error_data": "LOGON_MSG_BUMP_OPTIONS"},
            "auth.session_error",
        ),
        ({"early_authorization": "AUTHZ_ACCESS_DENIED"}, "auth.not_authorized"),
        ({"set_error_info": "ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES"}, "auth.not_authorized"),
        ({"set_error_info": "ERRINFO_SERVER_DENIED_CONNECTION"}, "auth.connection_limit"),
        ({"set_error_info": "ERRINFO_LICENSE_NO_LICENSE_SERVER"}, "auth.license"),
        ({"set_error_info": "ERRINFO_LOGOFF_BY_USER"}, "auth.session_error"),
        ({"license_error": "ERR_NO_LICENSE_SERVER"}, "auth.license"),
        ({"error": "stopped at attach user confirm: timeout"}, "auth.session_error"),
    ],
)
def test_after_logon(after, expected):
    ids = judge({"outcome": "accepted", "method": "nla", "user": "a", "after_logon": after})
    assert ids == ["auth.accepted", expected]


def test_domain_account_over_ntlm_and_logon_without_nla():
    notes = ["CORP is not the server's own name: a domain account was tried over NTLM (...)"]
    ids = judge({"outcome": "rejected_no_reason", "user": "CORP\\a", "notes": notes})
    assert ids == ["auth.ntlm_only", "auth.rejected_no_reason"]
    ids = judge({"outcome": "accepted", "method": "client_info", "user": "a",
                 "after_logon": {"logged_on": True}})  # fmt: skip
    assert ids == ["auth.logon_exposed", "auth.logged_on"]
    ids = judge({"outcome": "no_verdict", "method": "client_info", "user": "a", "error": "x"})
    assert ids == ["auth.logon_exposed", "auth.no_verdict"]
    ids = judge({"outcome": "no_verdict", "method": "client_info", "error": "x",
                 "after_logon": {"set_error_info": "ERRINFO_SERVER_DENIED_CONNECTION"}})  # fmt: skip
    assert ids == ["auth.logon_exposed", "auth.connection_limit"]
    ids = judge({"outcome": "not_attempted", "method": "client_info", "error": "no NLA"})
    assert ids == ["auth.not_attempted"]  # nothing was sent: nothing exposed
