"""The opt-in `auth` stage of `check --user`: does this account get a session, and if not, why?

With NLA the credentials go only through CredSSP (rdprobe.live.auth), bound to the TLS key. After
the server accepts them, the connection goes on as a client's would (MS-RDPBCGR 1.3.1.1): with
HYBRID_EX the Early User Authorization Result PDU (2.2.10.2), then the MCS Connect exchange, and
ends with an MCS Disconnect Provider Ultimatum before any session is built, so no session is left
behind. Without NLA a password would travel in the Client Info PDU: only with
--logon-without-nla, and never over Standard RDP Security.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rdprobe.live import auth as live_auth
from rdprobe.live import mcs as live_mcs
from rdprobe.live.check import StageContext, register_stage
from rdprobe.live.stages import NLA_PROTOCOLS, _open_tls, _request_selecting, _step
from rdprobe.live.timing import close_writer
from rdprobe.protocol.x224 import Protocol, protocol_name

#: Early User Authorization Result values (MS-RDPBCGR 2.2.10.2)
AUTHZ_RESULTS = {0x00000000: "AUTHZ_SUCCESS", 0x00000005: "AUTHZ_ACCESS_DENIED"}
NLA_ORDER = ("SSL|HYBRID|HYBRID_EX", "SSL|HYBRID")


@register_stage("auth")
async def auth_stage(ctx: StageContext) -> None:
    creds = ctx.options.credentials
    if creds is None:
        return
    if ctx.deadline.expired:
        ctx.observation.stages["auth"] = {
            "user": creds.display,
            "outcome": live_auth.ERROR,
            "error": "the earlier stages used up the target's time; run again with a larger "
            "--timeout",
            "summary": f"{creds.display}: not attempted, no time left",
        }
        return
    request = _request_selecting(ctx, NLA_PROTOCOLS, NLA_ORDER)
    if request is None:
        ctx.observation.stages["auth"] = _without_nla(ctx)
        return
    reader, writer, selected, tls = await _open_tls(ctx, request)
    facts: dict[str, Any] = {"method": "nla", "selected": protocol_name(selected)}
    try:
        if tls.error or not tls.chain_der:
            facts.update(
                outcome=live_auth.ERROR,
                user=creds.display,
                error=f"TLS before CredSSP failed: {tls.error or 'no certificate'}",
            )
            return
        facts["tls_version"] = tls.version
        result = await live_auth.credssp_logon(
            reader,
            writer,
            creds=creds,
            hostname=ctx.target.host,
            certificate_der=tls.chain_der[0],
            timeout=ctx.options.timeouts.read,
            deadline=ctx.deadline,
        )
        facts.update(result.to_dict())
        if result.outcome == live_auth.ACCEPTED:
            facts["after_logon"] = await _after_logon(reader, writer, selected, _step(ctx))
    finally:
        facts["summary"] = summary(facts)
        ctx.observation.stages["auth"] = facts
        if not writer.is_closing():  # mcs_probe has closed it after its Ultimatum
            await close_writer(writer)


def _without_nla(ctx: StageContext) -> dict[str, Any]:
    creds = ctx.options.credentials
    assert creds is not None
    facts: dict[str, Any] = {"method": "client_info", "user": creds.display}
    if not ctx.options.logon_without_nla:
        facts.update(
            outcome="not_attempted",
            error="the server does not offer NLA: its logon would carry the password in the "
            "Client Info PDU; rdprobe does that only with --logon-without-nla",
        )
        facts["summary"] = summary(facts)
        return facts
    facts.update(
        outcome="not_attempted",
        error="a logon through the Client Info PDU needs the session stage, not available "
        "in this build",
    )
    facts["summary"] = summary(facts)
    return facts


def summary(facts: dict[str, Any]) -> str:
    """One line for the human report (the user name only, never a secret)."""
    user, outcome = facts.get("user", "?"), facts.get("outcome")
    if outcome == live_auth.ACCEPTED:
        after = facts.get("after_logon") or {}
        text = f"{user}: password accepted (TSRequest v{facts.get('tsrequest_version')})"
        if after.get("early_authorization"):
            text += f"; {after['early_authorization']}"
        if after.get("set_error_info"):
            text += f"; then {after['set_error_info']}"
        elif (after.get("mcs") or {}).get("error") is None and "mcs" in after:
            text += "; MCS Connect Response reached, then disconnected"
        return text
    if outcome == live_auth.REJECTED:
        return f"{user}: refused with {facts.get('status') or facts.get('error_code')}"
    if outcome == live_auth.REJECTED_NO_REASON:
        return f"{user}: rejected, no reason given (closed after AUTHENTICATE)"
    if outcome == live_auth.MITM:
        return f"{user}: pubKeyAuth does not match the TLS key; credentials not sent"
    return f"{user}: {outcome}: {facts.get('error')}"


async def _after_logon(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, selected: int, timeout: float
) -> dict[str, Any]:
    """What the connection meets after CredSSP, up to the MCS Connect Response; then the
    client's way out (Disconnect Provider Ultimatum, inside mcs_probe)."""
    out: dict[str, Any] = {}
    if selected & Protocol.HYBRID_EX:
        try:
            raw = await asyncio.wait_for(reader.readexactly(4), timeout)
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            out["early_authorization"] = None
            out["error"] = "no Early User Authorization Result PDU after the credentials"
            return out
        code = int.from_bytes(raw, "little")
        out["early_authorization"] = AUTHZ_RESULTS.get(code, f"0x{code:08x}")
        if code != 0:
            return out
    result = await live_mcs.mcs_probe(reader, writer, selected_protocol=selected, timeout=timeout)
    out["mcs"] = {"error": result.error}
    data = result.server_data
    if data is not None and data.core is not None:
        out["mcs"]["server_version"] = data.core.version_name
    out["ended_with"] = "MCS Disconnect Provider Ultimatum"
    return out
