"""Open a connection the way a client would and walk it to the logon screen.

TCP connect and X.224 through rdprobe.live.negotiate, TLS through rdprobe.live.tls when the
server selected SSL (MS-RDPBCGR 5.4.5), then rdprobe.live.session. The clock starts before the
TCP connect, so every step time counts from there; the TCP handshake time is the path's own
round trip (the yardstick of the "slow to reach the logon screen" finding).
"""

from __future__ import annotations

import asyncio
import time

from rdprobe.analysis.session_facts import SessionFacts, Step, StepTime, StopKind
from rdprobe.live import tls as live_tls
from rdprobe.live.negotiate import Opening, Request, attempt
from rdprobe.live.session import Continuation, walk_session
from rdprobe.live.timing import Deadline, Timeouts, close_writer
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol


def _stopped(selected: int, step: Step, kind: StopKind, reason: str, **kw) -> SessionFacts:
    path = "rdp" if selected == 0 else "tls"
    return SessionFacts(path, selected, stopped_at=step, stop_kind=kind, stop_reason=reason, **kw)


async def probe_session(
    address: str,
    port: int,
    request: Request,
    *,
    cookie: str | None,
    timeouts: Timeouts,
    deadline: Deadline,
    server_hostname: str | None = None,
    channels: tuple[tuple[str, int], ...] = (),
    continue_with: Continuation | None = None,
    opening: asyncio.Semaphore | None = None,
) -> SessionFacts:
    """One fresh connection for ``request`` (RDP, SSL, or no negotiation), walked to the Demand
    Active. Never raises for what the network or the server does. ``opening``: the host's limit
    of connections being opened, held until the Connection Confirm (negotiate.attempt)."""
    async with Opening(opening) as slot:  # the clock starts once the slot is ours
        started = time.monotonic()
        a, streams = await attempt(
            address, port, request, cookie=cookie, timeouts=timeouts, deadline=deadline,
            keep_open=True, on_reply=slot.replied,
        )  # fmt: skip
    requested = request.requested or 0
    if streams is None or not isinstance(a.tpdu, ConnectionConfirm):
        step = (
            Step.TCP_CONNECT
            if a.connect_ms is None or (a.error and not a.reply_kind)
            else Step.X224
        )
        kind = StopKind.TIMEOUT if "within" in (a.error or "") else StopKind.CLOSED
        reason = a.error or f"no Connection Confirm ({a.reply_kind})"
        return _stopped(requested, step, kind, reason, rtt_ms=a.connect_ms)
    reader, writer = streams
    neg = a.tpdu.negotiation
    if neg is not None and not isinstance(neg, NegotiationResponse):
        await close_writer(writer)
        return _stopped(requested, Step.X224, StopKind.REFUSED, f"negotiation failure "
                        f"{neg.code_name}", rtt_ms=a.connect_ms)  # fmt: skip
    selected = neg.selected if neg else 0
    steps = [StepTime(Step.TCP_CONNECT, a.connect_ms or 0.0)]
    steps.append(StepTime(Step.X224, round((time.monotonic() - started) * 1000, 2)))
    if selected & (Protocol.HYBRID | Protocol.HYBRID_EX | Protocol.RDSTLS):
        await close_writer(writer)
        return _stopped(selected, Step.X224, StopKind.UNSUPPORTED, "the server selected "
                        "CredSSP/RDSTLS: the logon screen needs credentials first",
                        rtt_ms=a.connect_ms)  # fmt: skip
    if selected & Protocol.SSL:
        result = await live_tls.upgrade(
            reader, writer, server_hostname=server_hostname,
            timeout=deadline.limit(timeouts.read),
        )  # fmt: skip
        if result.error:
            await close_writer(writer)
            return _stopped(selected, Step.TLS, StopKind.CLOSED, f"TLS failed: {result.error}",
                            rtt_ms=a.connect_ms, steps=tuple(steps))  # fmt: skip
        steps.append(StepTime(Step.TLS, round((time.monotonic() - started) * 1000, 2)))
    return await walk_session(
        reader, writer, selected_protocol=selected, deadline=deadline,
        step_timeout=timeouts.read, started=started, rtt_ms=a.connect_ms,
        earlier=tuple(steps), channels=channels, continue_with=continue_with,
    )  # fmt: skip
