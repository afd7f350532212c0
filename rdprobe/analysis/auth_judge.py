"""Judgement of the `auth` stage (check --user): the server's verdict on one account.

Pure function of the JSON-ready facts in observation.stages["auth"] (rdprobe.live.auth_stage
writes them; an emulator or a test can too). The CredSSP errorCode is named by MS-ERREF; which
code a given account problem gives is the server's LSA's choice, not MS-CSSP's, so an unlisted
code is reported by its name alone (auth.error_code) instead of being guessed at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.observations import TargetObservation

#: errorCode name -> finding
STATUS_FINDINGS = {
    "STATUS_LOGON_FAILURE": "auth.logon_failure",
    "STATUS_WRONG_PASSWORD": "auth.logon_failure",
    "STATUS_NO_SUCH_USER": "auth.logon_failure",
    "SEC_E_LOGON_DENIED": "auth.logon_failure",
    "STATUS_ACCOUNT_LOCKED_OUT": "auth.account_locked_out",
    "STATUS_ACCOUNT_DISABLED": "auth.account_disabled",
    "STATUS_ACCOUNT_EXPIRED": "auth.account_expired",
    "STATUS_PASSWORD_EXPIRED": "auth.password_expired",
    "STATUS_PASSWORD_MUST_CHANGE": "auth.password_expired",
    "STATUS_ACCOUNT_RESTRICTION": "auth.account_restriction",
    "STATUS_INVALID_LOGON_HOURS": "auth.logon_hours",
    "STATUS_INVALID_WORKSTATION": "auth.workstation",
    "STATUS_LOGON_TYPE_NOT_GRANTED": "auth.logon_type_not_granted",
}
#: Set Error Info names (MS-RDPBCGR 2.2.5.1.1) with a finding of their own; every other one
#: gives auth.session_error with its name, ERRINFO_LICENSE_* gives auth.license.
ERRINFO_FINDINGS = {
    "ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES": "auth.not_authorized",
    "ERRINFO_SERVER_DENIED_CONNECTION": "auth.connection_limit",
}


def judge_auth(obs: TargetObservation, now: datetime) -> list[Finding]:
    del now  # nothing here depends on the time
    facts = obs.stages.get("auth")
    if not facts or "skipped" in facts:
        return []
    user = facts.get("user") or "the account"
    where: dict[str, Any] = {"host": obs.host, "port": obs.port, "user": user}
    out: list[Finding] = []
    for note in facts.get("notes") or ():
        if "over NTLM" in note:
            out.append(finding("auth.ntlm_only", **where))
    outcome = facts.get("outcome")
    if outcome is None and facts.get("error"):
        return [*out, finding("auth.failed", error=facts["error"], **where)]
    if outcome == "not_attempted":
        return [*out, finding("auth.not_attempted", reason=facts.get("error"), **where)]
    if facts.get("method") == "client_info" and outcome not in (None, "not_attempted"):
        out.append(finding("auth.logon_exposed", encryption=facts.get("protection"), **where))
    if outcome == "pubkey_mismatch":
        return [*out, finding("auth.pubkey_mismatch", error=facts.get("error"), **where)]
    if outcome == "rejected_no_reason":
        return [*out, finding("auth.rejected_no_reason", stage=facts.get("stage"), **where)]
    if outcome == "rejected":
        status = facts.get("status") or facts.get("error_code")
        spec = STATUS_FINDINGS.get(str(facts.get("status")), "auth.error_code")
        return [*out, finding(spec, status=status, error_code=facts.get("error_code"), **where)]
    if outcome != "accepted":
        return [*out, finding("auth.failed", error=facts.get("error"), **where)]
    if facts.get("method") == "nla":
        out.append(
            finding("auth.accepted", tsrequest_version=facts.get("tsrequest_version"), **where)
        )
    out.extend(_after_logon(facts.get("after_logon") or {}, where))
    return out


def _after_logon(after: dict[str, Any], where: dict[str, Any]) -> list[Finding]:
    """What the session sequence met once the account was accepted."""
    authz = after.get("early_authorization")
    if authz not in (None, "AUTHZ_SUCCESS"):
        return [finding("auth.not_authorized", reason=f"Early User Authorization {authz}", **where)]
    errinfo = after.get("set_error_info")
    if errinfo:
        name = str(errinfo)
        if name.startswith("ERRINFO_LICENSE_"):
            return [finding("auth.license", reason=name, **where)]
        spec = ERRINFO_FINDINGS.get(name, "auth.session_error")
        return [finding(spec, reason=name, **where)]
    license_error = after.get("license_error")
    if license_error:
        return [finding("auth.license", reason=str(license_error), **where)]
    mcs = after.get("mcs") or {}
    if mcs.get("error"):
        return [finding("auth.session_error", reason=f"MCS: {mcs['error']}", **where)]
    if after.get("error"):
        return [finding("auth.session_error", reason=after["error"], **where)]
    reached = after.get("reached") or ("the MCS Connect Response" if mcs else "the logon")
    return [finding("auth.session_reached", reached=reached, **where)]
