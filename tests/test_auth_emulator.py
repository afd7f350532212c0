"""`check --user` against the spec-built NLA logon profiles of the emulator: each Windows-only
verdict (NTSTATUS errorCodes, AUTHZ_ACCESS_DENIED, a pubKeyAuth for another key) becomes its
finding, and every TSRequest version logs on. Spec-built: no recorded Windows failure exists."""

from __future__ import annotations

import asyncio

import pytest

from rdprobe.emulate.credssp_server import EMULATOR_ACCOUNTS
from rdprobe.emulate.profiles import PROFILES
from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.credentials import Credentials
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts

TIMEOUTS = Timeouts(connect=1.5, read=2.0, total=10.0)
_, USER, PASSWORD = EMULATOR_ACCOUNTS[0]

#: profile -> (auth outcome, status name or None, finding that must be present)
EXPECTED = {
    "win-nla-logon": ("accepted", None, "auth.logged_on"),
    "win-nla-logon-v5": ("accepted", None, "auth.logged_on"),
    "win-nla-logon-v4": ("accepted", None, "auth.logged_on"),
    "win-nla-logon-v3": ("accepted", None, "auth.logged_on"),
    "win-nla-logon-v2": ("accepted", None, "auth.logged_on"),
    "win-nla-wrong-password": ("accepted", None, "auth.logged_on"),  # the right password here
    "win-nla-close-on-failure": ("accepted", None, "auth.logged_on"),
    "win-nla-insufficient-privileges": ("accepted", None, "auth.not_authorized"),
    "win-nla-denied-connection": ("accepted", None, "auth.connection_limit"),
    "win-nla-no-license-server": ("accepted", None, "auth.license"),
    "win-nla-no-permission": ("accepted", None, "auth.not_authorized"),
    "win-nla-no-notification": ("accepted", None, "auth.session_reached"),
    "win-nla-mitm": ("pubkey_mismatch", None, "auth.pubkey_mismatch"),
    "win-nla-not-authorized": ("accepted", None, "auth.not_authorized"),
    "win-nla-locked-out": ("rejected", "STATUS_ACCOUNT_LOCKED_OUT", "auth.account_locked_out"),
    "win-nla-disabled": ("rejected", "STATUS_ACCOUNT_DISABLED", "auth.account_disabled"),
    "win-nla-account-expired": ("rejected", "STATUS_ACCOUNT_EXPIRED", "auth.account_expired"),
    "win-nla-password-expired": ("rejected", "STATUS_PASSWORD_EXPIRED", "auth.password_expired"),
    "win-nla-must-change": ("rejected", "STATUS_PASSWORD_MUST_CHANGE", "auth.password_expired"),
    "win-nla-restriction": ("rejected", "STATUS_ACCOUNT_RESTRICTION", "auth.account_restriction"),
    "win-nla-logon-hours": ("rejected", "STATUS_INVALID_LOGON_HOURS", "auth.logon_hours"),
    "win-nla-workstation": ("rejected", "STATUS_INVALID_WORKSTATION", "auth.workstation"),
    "win-nla-logon-type": (
        "rejected",
        "STATUS_LOGON_TYPE_NOT_GRANTED",
        "auth.logon_type_not_granted",
    ),
}


async def check_as(name: str, user: str = USER, password: str = PASSWORD, domain: str = ""):
    async with await serve(name, "127.0.0.1", 0) as server:
        opts = CheckOptions(
            timeouts=TIMEOUTS,
            credentials=Credentials(user, domain, password),
            stages=frozenset({"nla", "auth"}),
        )
        (report,) = await asyncio.wait_for(
            check_target(Target("127.0.0.1", server.port, True), opts), TIMEOUTS.total + 5
        )
    return report, {f.id for f in report.findings}


def test_every_logon_profile_is_labelled_spec_built_and_expected():
    names = {n for n in PROFILES if n.startswith("win-nla-")}
    assert names == set(EXPECTED)
    for name in names:
        assert "spec-built" in PROFILES[name].description


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_logon_profile_verdict(name):
    outcome, status, present = EXPECTED[name]
    report, ids = await check_as(name)
    auth = report.observation.stages["auth"]
    assert auth["outcome"] == outcome, auth
    assert auth["status"] == status
    assert present in ids, ids
    assert "nla.identity" in ids  # the anonymous probe met the same acceptor's CHALLENGE
    after = auth.get("after_logon") or {}
    if present == "auth.logged_on":
        assert after["session"]["reached_logon"] is True and after["logon"]["finalized"]
        note = after["logon"]["logon_notification"]
        assert note == {"info_type": "INFOTYPE_LOGON_LONG", "session_id": 2,
                        "logon_error": None, "logon_error_data": None}  # fmt: skip
    if present in ("auth.not_authorized", "auth.connection_limit", "auth.license"):
        assert "auth.logged_on" not in ids and "auth.session_reached" not in ids
    if name == "win-nla-insufficient-privileges":
        assert after["set_error_info"] == "ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES"
        assert after["session"]["ultimatum"] == "RN_PROVIDER_INITIATED"
    if name.startswith("win-nla-logon-v"):
        assert auth["tsrequest_version"] == int(name[-1])
    if outcome != "accepted":
        assert "auth.accepted" not in ids and "auth.session_reached" not in ids


async def test_wrong_password_profiles():
    report, ids = await check_as("win-nla-wrong-password", password="Nope-1")
    assert report.observation.stages["auth"]["status"] == "STATUS_LOGON_FAILURE"
    assert "auth.logon_failure" in ids
    report, ids = await check_as("win-nla-close-on-failure", user="nobody")
    assert "auth.rejected_no_reason" in ids


async def test_domain_account_is_reported_as_tried_over_ntlm():
    _report, ids = await check_as("win-nla-wrong-password", domain="CORP", password="x")
    assert {"auth.ntlm_only", "auth.logon_failure"} <= ids
