"""Judge one walk to the logon screen: SessionFacts -> findings (texts in findings.py).

Pure: a function of the facts and of ``now`` (kept for the judges' common signature; nothing
here depends on the clock). The slow-logon rule compares the time to the Demand Active with
the TCP handshake, the path's own round trip: a server far away is not "busy".
"""

from __future__ import annotations

from datetime import datetime

from rdprobe.analysis.findings import Finding, finding
from rdprobe.analysis.session_facts import SessionFacts, Step, StopKind

#: Below this the walk is never called slow, whatever the round trip (xrdp on loopback
#: takes ~0.3 s, most of it before the Connection Confirm).
SLOW_FLOOR_MS = 3000.0
#: ... and above this many round trips it is: the sequence needs about ten.
SLOW_ROUND_TRIPS = 50
#: Steps after which a drop means the server refused what the security exchange set up.
_AFTER_EXCHANGE = (Step.CLIENT_INFO, Step.LICENSING)


def is_slow(logon_ms: float, rtt_ms: float | None) -> bool:
    return logon_ms > max(SLOW_FLOOR_MS, SLOW_ROUND_TRIPS * (rtt_ms or 0.0))


def judge_session(facts: SessionFacts, now: datetime) -> list[Finding]:
    """Findings for one walk."""
    del now
    out: list[Finding] = []
    for info in facts.error_info:
        if info.code:  # ERRINFO_NONE "SHOULD be ignored"
            out.append(finding("session.error_info", code=info.code, code_hex=f"0x{info.code:08X}",
                               name=info.name, step=info.step.value))  # fmt: skip
    lic = facts.licensing
    if lic is not None and lic.outcome == "error":
        out.append(finding("session.licensing_error", error_name=lic.error_name,
                           error_code=lic.error_code, state_transition=lic.state_transition))  # fmt: skip
    if facts.reached_logon:
        logon = facts.logon_ms or 0.0
        shown = {"logon_ms": round(logon), "rtt_ms": round(facts.rtt_ms or 0.0, 1)}
        out.append(finding("session.logon_screen", path=facts.path, **shown))
        if is_slow(logon, facts.rtt_ms):
            out.append(finding("session.logon_slow", **shown))
        return out
    evidence = {
        "step": facts.stopped_at.value if facts.stopped_at else "unknown",
        "stop_reason": facts.stop_reason,
        "stop_kind": facts.stop_kind.value if facts.stop_kind else None,
        "ultimatum": facts.ultimatum,
    }
    kind = facts.stop_kind
    if kind is StopKind.ENCRYPTED:
        return out  # a capture that cannot show more: nothing to judge
    exchanged = facts.time_of(Step.SECURITY_EXCHANGE) is not None
    if kind is StopKind.LICENSING:
        if lic is None or lic.outcome != "error":
            out.append(finding("session.licensing_exchange", message=lic.message if lic else "?",
                               **evidence))  # fmt: skip
    elif kind is StopKind.UNSUPPORTED:
        out.append(finding("session.not_walked", **evidence))
    elif kind is StopKind.MAC or (
        exchanged
        and facts.stopped_at in _AFTER_EXCHANGE
        and kind in (StopKind.CLOSED, StopKind.ULTIMATUM)
        and facts.licensing is None
        and not facts.error_info
    ):
        out.append(finding("session.security_rejected", **evidence))
    elif exchanged and kind is StopKind.TIMEOUT and facts.licensing is None:
        out.append(finding("session.security_unanswered", **evidence))
    elif not (lic is not None and lic.outcome == "error") and not facts.error_info:
        out.append(finding("session.dropped", **evidence))
    return out
