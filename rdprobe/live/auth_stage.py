"""The opt-in `auth` stage of `check --user`: does this account get a session, and if not, why?

With NLA the credentials go only through CredSSP (rdprobe.live.auth), bound to the TLS key. After
the server accepts them, the connection goes on as a client's would (MS-RDPBCGR 1.3.1.1): with
HYBRID_EX the Early User Authorization Result PDU (2.2.10.2), then the MCS Connect exchange, and
ends with an MCS Disconnect Provider Ultimatum. Without NLA a password would travel in the
Client Info PDU: only with --logon-without-nla, and never over Standard RDP Security.
Sets observation.auth (rdprobe.analysis.auth_facts.AuthFacts).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rdprobe.analysis import auth_facts as af
from rdprobe.analysis.auth_facts import AuthFacts
from rdprobe.live import auth as live_auth
from rdprobe.live import mcs as live_mcs
from rdprobe.live.timing import close_writer
from rdprobe.protocol.x224 import Protocol, protocol_name

if TYPE_CHECKING:
    from rdprobe.live.stages import StageContext

#: Early User Authorization Result values (MS-RDPBCGR 2.2.10.2)
AUTHZ_RESULTS = {0x00000000: "AUTHZ_SUCCESS", 0x00000005: "AUTHZ_ACCESS_DENIED"}
NLA_ORDER = ("SSL|HYBRID|HYBRID_EX", "SSL|HYBRID")


async def auth_stage(ctx: StageContext) -> None:
    from rdprobe.live.stages import NLA_PROTOCOLS, _request_selecting

    creds = ctx.options.credentials
    if creds is None:
        return
    if ctx.deadline.expired:
        ctx.observation.auth = AuthFacts(
            "nla", creds.display, af.ERROR,
            error="the earlier stages used up the target's time; run again with a larger "
            "--timeout",
        )  # fmt: skip
        return
    request = await _request_selecting(ctx, NLA_PROTOCOLS, NLA_ORDER)
    if request is None:
        ctx.observation.auth = _without_nla(ctx)
        return
    ctx.observation.auth = await _nla(ctx, request)


async def _nla(ctx: StageContext, request: Any) -> AuthFacts:
    from rdprobe.live.stages import _open_tls, _step

    creds = ctx.options.credentials
    assert creds is not None
    reader, writer, selected, tls = await _open_tls(ctx, request)
    base: dict[str, Any] = {"selected": protocol_name(selected), "tls_version": tls.version}
    try:
        if tls.error or not tls.chain_der:
            error = f"TLS before CredSSP failed: {tls.error or 'no certificate'}"
            return AuthFacts("nla", creds.display, af.ERROR, error=error, **base)
        result = await live_auth.credssp_logon(
            reader,
            writer,
            creds=creds,
            hostname=ctx.target.host,
            certificate_der=tls.chain_der[0],
            timeout=ctx.options.timeouts.read,
            deadline=ctx.deadline,
        )
        after = None
        if result.outcome == af.ACCEPTED:
            after = await _after_logon(reader, writer, selected, _step(ctx))
        return AuthFacts("nla", after_logon=after, **base, **result.fields())
    finally:
        if not writer.is_closing():  # mcs_probe has closed it after its Ultimatum
            await close_writer(writer)


def _without_nla(ctx: StageContext) -> AuthFacts:
    creds = ctx.options.credentials
    assert creds is not None
    if not ctx.options.logon_without_nla:
        error = (
            "the server does not offer NLA: its logon would carry the password in the Client "
            "Info PDU; rdprobe does that only with --logon-without-nla"
        )
    else:
        error = "a logon through the Client Info PDU needs the session stage (issue 10)"
    return AuthFacts("client_info", creds.display, af.NOT_ATTEMPTED, error=error)


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
    if result.error:
        out["error"] = f"MCS: {result.error}"
    else:
        core = result.server_data.core if result.server_data else None
        out["server_version"] = core.version_name if core else None
        out["reached"] = "the MCS Connect Response"
    out["ended_with"] = "MCS Disconnect Provider Ultimatum"
    return out
