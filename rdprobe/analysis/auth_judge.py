"""Judgement of the `auth` stage (check --user): the server's verdict on one account.

Pure function of observation.auth (rdprobe.analysis.auth_facts.AuthFacts, set by
rdprobe.live.auth_stage; an emulator or a test builds the same object). The CredSSP errorCode is named by MS-ERREF; which
code a given account problem gives is the server's LSA's choice, not MS-CSSP's, so an unlisted
code is reported by its name alone (auth.error_code) instead of being guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rdprobe.analysis import auth_facts as af
from rdprobe.analysis.auth_facts import AuthFacts
from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.observations import TargetObservation
from rdprobe.analysis.trust import TrustRoots

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

#: Save Session Info logon errors (MS-RDPBCGR 2.2.10.1.1.4.1.1): errorNotificationData first,
#: then errorNotificationType
LOGON_ERROR_FINDINGS = {
    "LOGON_MSG_NO_PERMISSION": "auth.not_authorized",
    "LOGON_FAILED_BAD_PASSWORD": "auth.logon_failure",
    "LOGON_FAILED_UPDATE_PASSWORD": "auth.password_expired",
}


def judge_auth(
    obs: TargetObservation, now: datetime, roots: TrustRoots | None = None
) -> list[Finding]:
    del now, roots  # nothing here depends on the time or on trust
    facts = obs.auth
    if not isinstance(facts, AuthFacts):
        return []
    where: dict[str, Any] = {"host": obs.host, "port": obs.port, "user": facts.user}
    out: list[Finding] = []
    if facts.ntlm_for_domain_account:
        out.append(finding("auth.ntlm_only", **where))
    outcome = facts.outcome
    if outcome == af.NOT_ATTEMPTED:
        return [*out, finding("auth.not_attempted", reason=facts.error, **where)]
    if facts.method == "client_info":
        out.append(finding("auth.logon_exposed", **where))
    if outcome == af.MITM:
        return [*out, finding("auth.pubkey_mismatch", error=facts.error, **where)]
    if outcome == af.REJECTED_NO_REASON:
        return [*out, finding("auth.rejected_no_reason", stage=facts.stage, **where)]
    if outcome == af.NO_VERDICT:
        after = facts.after_logon or {}
        if any(after.get(k) for k in ("set_error_info", "license_error", "error")):
            return [*out, *_after_logon(after, where)]  # the session was refused: say why
        return [*out, finding("auth.no_verdict", reached=facts.error, **where)]
    if outcome == af.REJECTED and facts.error_code is not None:
        status = facts.status or f"0x{facts.error_code:08x}"
        spec = STATUS_FINDINGS.get(str(facts.status), "auth.error_code")
        code = f"0x{facts.error_code:08x}"
        return [*out, finding(spec, status=status, error_code=code, **where)]
    if outcome == af.REJECTED:  # a Client Info logon refused by a logon error notification
        return [*out, *_after_logon(facts.after_logon or {}, where)]
    if outcome != af.ACCEPTED:
        return [*out, finding("auth.failed", error=facts.error, **where)]
    if facts.method == "nla":
        out.append(finding("auth.accepted", tsrequest_version=facts.tsrequest_version, **where))
    out.extend(_after_logon(facts.after_logon or {}, where))
    return out


def _after_logon(after: Mapping[str, Any], where: dict[str, Any]) -> list[Finding]:
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
    logon_error = after.get("logon_error")
    if logon_error:
        data = after.get("logon_error_data")
        which = LOGON_ERROR_FINDINGS.get(str(data)) or LOGON_ERROR_FINDINGS.get(str(logon_error))
        reason = f"{logon_error} ({data})"
        return [finding(which or "auth.session_error", reason=reason, status=reason, **where)]
    if after.get("logged_on"):
        return [finding("auth.logged_on", reached=after.get("reached"), **where)]
    if after.get("error"):
        return [finding("auth.session_error", reason=after["error"], **where)]
    reached = after.get("reached") or "the logon"
    return [finding("auth.session_reached", reached=reached, **where)]
