"""The walk against hostile and Windows-only servers (the emulator's session host, spec-built):
a server that stops, closes, drips or sends garbage at each step ends in a named outcome
inside the deadline; licensing errors and Set Error Info codes become their findings."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from rdprobe.analysis.session_facts import SessionFacts, Step, StepTime, StopKind
from rdprobe.analysis.session_judge import judge_session
from rdprobe.emulate import session_host as sh
from rdprobe.emulate.profiles import Profile, Then
from rdprobe.emulate.server import serve
from rdprobe.live.negotiate import Request
from rdprobe.live.session_open import probe_session
from rdprobe.live.timing import Deadline, Timeouts

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TIMEOUTS = Timeouts(connect=1.0, read=1.0, total=3.0)
RDP = Request("RDP", 0)
WHERE = {"mcs": Step.MCS_CONNECT, "attach": Step.ATTACH_USER, "join": Step.CHANNEL_JOIN,
         "info": Step.LICENSING}  # fmt: skip
KIND = {"silent": StopKind.TIMEOUT, "close": StopKind.CLOSED, "garbage": StopKind.GARBAGE,
        "drip": StopKind.TIMEOUT}  # fmt: skip


async def _walk(behaviour, timeouts: Timeouts = TIMEOUTS) -> tuple[SessionFacts, float]:
    profile = Profile("test", "test", behaviour)
    async with await serve(profile, "127.0.0.1", 0) as em:
        started = time.monotonic()
        facts = await asyncio.wait_for(
            probe_session(
                "127.0.0.1",
                em.port,
                RDP,
                cookie=None,
                timeouts=timeouts,
                deadline=Deadline(timeouts.total),
            ),
            timeouts.total + 2,
        )
        return facts, time.monotonic() - started


@pytest.mark.parametrize("how", list(KIND))
@pytest.mark.parametrize("step", sh.STEPS)
async def test_every_step_every_misbehaviour_is_named_inside_the_deadline(step, how):
    after = (sh.valid_client(), sh.demand_active())
    facts, elapsed = await _walk(sh.SessionHost(after, Then.HOLD, fail=step, how=how, drip=0.6))
    assert not facts.reached_logon
    assert facts.stopped_at is WHERE[step], facts.outcome
    assert facts.stop_kind is KIND[how], facts.outcome
    assert facts.outcome.startswith(f"stopped at {WHERE[step].value}: ")
    assert elapsed < TIMEOUTS.total + 0.5
    findings = {f.id for f in judge_session(facts, NOW)}
    assert findings == {"session.dropped"}, findings


async def test_drip_slower_than_the_deadline_on_the_last_pdu():
    """A Demand Active dripped a byte every 50 ms: per-read limits alone would never fire; the
    target's deadline does."""
    slow = sh.SessionHost((sh.valid_client(), sh.demand_active()), fail="info", how="drip",
                          drip=0.05)  # fmt: skip
    facts, elapsed = await _walk(slow, Timeouts(connect=1.0, read=2.5, total=2.5))
    assert facts.stop_kind is StopKind.TIMEOUT and elapsed < 3.0


@pytest.mark.parametrize(
    ("name", "expect", "outcome"),
    [
        ("session-valid-client", {"session.logon_screen"}, "reached"),
        ("session-deactivate", {"session.logon_screen"}, "reached"),
        ("session-license-error", {"session.licensing_error"}, "stopped at licensing"),
        ("session-no-license-server", {"session.error_info"}, "stopped at licensing"),
        ("session-denied", {"session.error_info"}, "stopped at licensing"),
    ],
)
async def test_windows_only_answers_become_their_findings(name, expect, outcome):
    from rdprobe.emulate.profiles import get

    facts, _ = await _walk(get(name).behaviour)
    found = judge_session(facts, NOW)
    assert {f.id for f in found} == expect
    assert facts.outcome.startswith(outcome)
    if name == "session-license-error":
        assert facts.licensing.error_name == "ERR_NO_LICENSE_SERVER"
        assert facts.licensing.state_transition == "ST_TOTAL_ABORT"
        assert "ERR_NO_LICENSE_SERVER" in found[0].title
    if name == "session-no-license-server":
        assert [e.name for e in facts.error_info] == ["ERRINFO_LICENSE_NO_LICENSE_SERVER"]
        assert facts.ultimatum == "RN_PROVIDER_INITIATED"
        assert found[0].title == (
            "The server reported ERRINFO_LICENSE_NO_LICENSE_SERVER (0x00000101) during licensing"
        )
    if name == "session-deactivate":
        assert facts.deactivate_all and facts.pdus_received == (
            "licensing ERROR_ALERT", "Deactivate All", "Demand Active",
        )  # fmt: skip
    if outcome == "reached":
        assert facts.demand_active.os == "OSMAJORTYPE_WINDOWS/OSMINORTYPE_WINDOWS_NT"
        assert facts.demand_active.desktop == (1024, 768, 32)


async def test_busy_session_host_is_slow_for_its_round_trip():
    from rdprobe.emulate.profiles import get

    facts, _ = await _walk(get("session-busy").behaviour, Timeouts(1.0, 5.0, 10.0))
    assert facts.reached_logon and facts.logon_ms > 3400
    assert {f.id for f in judge_session(facts, NOW)} == {"session.logon_screen",
                                                         "session.logon_slow"}  # fmt: skip


# --- the judge on hand-made facts ----------------------------------------------------------


def _facts(**kw) -> SessionFacts:
    base = dict(path="rdp", selected_protocol=0, rtt_ms=20.0)
    base.update(kw)
    return SessionFacts(**base)  # type: ignore[arg-type]


def test_slow_is_relative_to_the_round_trip():
    far = _facts(rtt_ms=200.0, steps=(StepTime(Step.DEMAND_ACTIVE, 4000.0),),
                 demand_active=_demand())  # fmt: skip
    near = _facts(rtt_ms=2.0, steps=(StepTime(Step.DEMAND_ACTIVE, 4000.0),),
                  demand_active=_demand())  # fmt: skip
    assert {f.id for f in judge_session(far, NOW)} == {"session.logon_screen"}
    assert {f.id for f in judge_session(near, NOW)} == {
        "session.logon_screen",
        "session.logon_slow",
    }


def _demand():
    from rdprobe.analysis.session_facts import DemandActiveFacts

    return DemandActiveFacts(1, "RDP", 0, ())


def test_security_exchange_rejected_unanswered_and_not_walked():
    exchanged = (StepTime(Step.SECURITY_EXCHANGE, 10.0), StepTime(Step.CLIENT_INFO, 11.0))
    dropped = _facts(steps=exchanged, stopped_at=Step.LICENSING, stop_kind=StopKind.CLOSED,
                     stop_reason="the server closed the connection")  # fmt: skip
    assert [f.id for f in judge_session(dropped, NOW)] == ["session.security_rejected"]
    mac = _facts(steps=exchanged, stopped_at=Step.DEMAND_ACTIVE, stop_kind=StopKind.MAC,
                 stop_reason="MAC of a server PDU does not verify")  # fmt: skip
    assert [f.id for f in judge_session(mac, NOW)] == ["session.security_rejected"]
    silent = _facts(steps=exchanged, stopped_at=Step.LICENSING, stop_kind=StopKind.TIMEOUT,
                    stop_reason="no whole PDU within 5.0 s")  # fmt: skip
    assert [f.id for f in judge_session(silent, NOW)] == ["session.security_unanswered"]
    nla = _facts(stopped_at=Step.X224, stop_kind=StopKind.UNSUPPORTED, stop_reason="CredSSP")
    assert [f.id for f in judge_session(nla, NOW)] == ["session.not_walked"]
    # without a security exchange the same drop is a plain drop at its step
    plain = _facts(stopped_at=Step.LICENSING, stop_kind=StopKind.CLOSED, stop_reason="closed")
    finding = judge_session(plain, NOW)[0]
    assert finding.id == "session.dropped" and finding.title == (
        "The connection stopped at licensing: closed"
    )


def test_the_stage_walks_the_path_a_client_would_take():
    from rdprobe.analysis.observations import Attempt, ReplyKind, TcpOutcome
    from rdprobe.live.session_stage import choose_request
    from rdprobe.protocol.x224 import (
        ConnectionConfirm,
        FailureCode,
        NegotiationFailure,
        NegotiationResponse,
    )

    def seen(label: str, neg) -> Attempt:
        confirm = ConnectionConfirm(0, 0x1234, 0, neg)
        return Attempt(label, 0, TcpOutcome.CONNECTED, reply_kind=ReplyKind.TPDU, tpdu=confirm)

    tls = [seen("SSL", NegotiationResponse(1, 0)), seen("RDP", NegotiationResponse(0, 0))]
    assert choose_request(tls).label == "SSL"
    rdp_only = [seen("SSL", NegotiationFailure(FailureCode.SSL_NOT_ALLOWED_BY_SERVER)),
                seen("RDP", NegotiationResponse(0, 0))]  # fmt: skip
    assert choose_request(rdp_only).label == "RDP"
    legacy = [seen("RDP", None), seen("no negotiation", None)]
    assert choose_request(legacy).label == "RDP"
    nla = [seen("SSL", NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER)),
           seen("RDP", NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER))]  # fmt: skip
    assert choose_request(nla) is None
