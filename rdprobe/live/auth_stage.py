"""The opt-in `auth` stage of `check --user`: does this account get a session, and if not, why?

With NLA the credentials go only through CredSSP (rdprobe.live.auth), bound to the TLS key. After
the server accepts them, the connection goes on as a client's would (MS-RDPBCGR 1.3.1.1): with
HYBRID_EX the Early User Authorization Result PDU (2.2.10.2), then the session stage's walk
(rdprobe.live.session) with a Client Info naming the user, the client's finalization and the
wait for the logon notification (rdprobe.live.logon), and it ends with an MCS Disconnect
Provider Ultimatum. Without NLA a password would travel in the Client Info PDU: only with
--logon-without-nla, over TLS only (never Standard RDP Security, whose signing key is public).
Sets observation.auth (rdprobe.analysis.auth_facts.AuthFacts).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from rdprobe.analysis import auth_facts as af
from rdprobe.analysis.auth_facts import AuthFacts
from rdprobe.live import auth as live_auth
from rdprobe.live.logon import LogonWatch, finish_and_watch
from rdprobe.live.session import walk_session
from rdprobe.live.timing import close_writer
from rdprobe.protocol import clientinfo
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
        ctx.observation.auth = await _without_nla(ctx)
        return
    ctx.observation.auth = await _nla(ctx, request)


async def _nla(ctx: StageContext, request: Any) -> AuthFacts:
    from rdprobe.live.stages import _open_tls, _step

    creds = ctx.options.credentials
    assert creds is not None
    started = time.monotonic()
    reader, writer, selected, tls = await _open_tls(ctx, request, "auth: TLS handshake")
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
            after = await _after_nla(ctx, reader, writer, selected, started, _step(ctx))
        return AuthFacts("nla", after_logon=after, **base, **result.fields())
    finally:
        if not writer.is_closing():  # walk_session has closed it after its Ultimatum
            await close_writer(writer)


async def _without_nla(ctx: StageContext) -> AuthFacts:
    """--logon-without-nla: the password in the Client Info PDU, over TLS only."""
    from rdprobe.live.stages import _open_tls, _request_selecting

    creds = ctx.options.credentials
    assert creds is not None
    error: str | None
    if not ctx.options.logon_without_nla:
        error = (
            "the server does not offer NLA: its logon would carry the password in the Client "
            "Info PDU; rdprobe does that only with --logon-without-nla"
        )
        return AuthFacts("client_info", creds.display, af.NOT_ATTEMPTED, error=error)
    request = await _request_selecting(ctx, Protocol.SSL, ("SSL",))
    if request is None:
        error = (
            "the server offers neither NLA nor TLS: over Standard RDP Security the password is "
            "readable by a man in the middle (its signing key is public), so rdprobe does not "
            "send it"
        )
        return AuthFacts("client_info", creds.display, af.NOT_ATTEMPTED, error=error)
    started = time.monotonic()
    reader, writer, selected, tls = await _open_tls(ctx, request, "auth: TLS handshake")
    base: dict[str, Any] = {"selected": protocol_name(selected), "tls_version": tls.version}
    if tls.error:
        await close_writer(writer)
        error = f"TLS failed: {tls.error}"
        return AuthFacts("client_info", creds.display, af.ERROR, error=error, **base)
    info = clientinfo.InfoPacket(
        flags=clientinfo.PROBE_FLAGS | clientinfo.InfoFlag.INFO_AUTOLOGON,
        domain=creds.domain,
        user_name=creds.user,
        password=creds.password(),
    )
    after = await _session(ctx, reader, writer, selected, info, started)
    del info
    outcome, error = af.NO_VERDICT, None
    if after.get("logged_on"):
        outcome = af.ACCEPTED
    elif after.get("logon_error"):
        outcome = af.REJECTED
        error = f"logon error {after['logon_error']} ({after['logon_error_data']})"
    else:  # the judge reads a Set Error Info, licensing error or stop from after_logon
        error = after.get("reached") or after.get("error")
    return AuthFacts("client_info", creds.display, outcome, error=error, after_logon=after, **base)


async def _after_nla(
    ctx: StageContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    selected: int,
    started: float,
    step: float,
) -> dict[str, Any]:
    """After CredSSP: the Early User Authorization Result with HYBRID_EX (MS-RDPBCGR 2.2.10.2),
    then the session sequence with a Client Info naming the user (the password went through
    CredSSP and is not repeated)."""
    out: dict[str, Any] = {}
    if selected & Protocol.HYBRID_EX:
        try:
            raw = await asyncio.wait_for(reader.readexactly(4), step)
        except (TimeoutError, asyncio.IncompleteReadError, OSError):
            return {
                "early_authorization": None,
                "error": "no Early User Authorization Result PDU after the credentials",
            }
        code = int.from_bytes(raw, "little")
        out["early_authorization"] = AUTHZ_RESULTS.get(code, f"0x{code:08x}")
        if code != 0:
            return out
    creds = ctx.options.credentials
    assert creds is not None
    info = clientinfo.InfoPacket(
        flags=clientinfo.PROBE_FLAGS | clientinfo.InfoFlag.INFO_AUTOLOGON,
        domain=creds.domain,
        user_name=creds.user,
    )
    out.update(await _session(ctx, reader, writer, selected, info, started))
    return out


async def _session(
    ctx: StageContext,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    selected: int,
    info: clientinfo.InfoPacket,
    started: float,
) -> dict[str, Any]:
    """The session sequence after the logon's credentials, ended the client's way; what it met."""
    watch = LogonWatch()
    wait = ctx.options.timeouts.read
    session = await walk_session(
        reader,
        writer,
        selected_protocol=selected,
        deadline=ctx.deadline,
        step_timeout=ctx.options.timeouts.read,
        started=started,
        info=info,
        continue_with=finish_and_watch(watch, wait),
    )
    out: dict[str, Any] = {"session": session.to_dict(), "logon": watch.to_dict()}
    if session.error_info:
        out["set_error_info"] = session.error_info[0].name
    lic = session.licensing
    if lic is not None and lic.outcome == "error" and lic.error_name != "STATUS_VALID_CLIENT":
        out["license_error"] = lic.error_name
    note = watch.notification
    if note is not None and note.logged_on:
        out["reached"] = f"the logon notification (Save Session Info {note.info_type_name})"
        out["logged_on"] = True
    elif note is not None:
        out["logon_error"] = note.error_name
        out["logon_error_data"] = note.error_data_name
        out["reached"] = "a logon error notification"
    elif watch.finalized and session.ultimatum:
        out["reached"] = "the end of the connection sequence, then the server's disconnect"
    elif watch.finalized:
        screen = " and the server's screen updates" if watch.screen_updates else ""
        out["reached"] = (
            f"the end of the connection sequence{screen} (no logon notification within {wait:g} s)"
        )
    elif session.reached_logon:
        out["reached"] = "the Demand Active"
    elif "set_error_info" not in out and "license_error" not in out:
        out["error"] = session.outcome
    out["ended_with"] = "MCS Disconnect Provider Ultimatum"
    return out
