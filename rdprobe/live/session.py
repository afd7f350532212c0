"""Walk an open connection from MCS Connect to the Demand Active (the logon screen), no logon.

A thin asyncio adapter over the sans-IO layers: MCS Connect Initial/Response (mcs, gcc_*),
Erect Domain, Attach User, Channel Joins (mcs_domain), the Security Exchange and bulk
encryption of Standard RDP Security (sechdr, rdpcrypt), the Client Info PDU without
credentials (clientinfo), then every server PDU by name (licensing, share) until the Demand
Active. It never sends a Confirm Active: it sends a Disconnect Provider Ultimatum and closes,
so the logon-screen session the server created is held no longer than needed.
MS-RDPBCGR 1.3.1.1, 2.2.1.3-2.2.1.13, 5.3, 5.4. Every read is bounded by the deadline; every
way the server can stop, drip or send garbage becomes ``SessionFacts.stopped_at/stop_reason``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace

from rdprobe.analysis.session_facts import (
    CapabilityFact,
    DemandActiveFacts,
    ErrorInfoFact,
    SessionFacts,
    Step,
    StepTime,
    StopKind,
)
from rdprobe.live.session_io import Stop, Walk, unwrap
from rdprobe.live.session_licensing import handle_licensing
from rdprobe.live.timing import Deadline, close_writer
from rdprobe.protocol import (
    clientinfo,
    gcc,
    gcc_client,
    gcc_server,
    mcs,
    mcs_domain,
    rdpcrypt,
    rdpsec,
    sechdr,
    share,
    x224,
)
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.gcc import EncryptionMethod
from rdprobe.protocol.sechdr import HeaderKind, SecurityFlag

#: What a probe offers: every method, so the server picks by its own level.
OFFERED_METHODS = 0x1B
#: The Client Info rdprobe sends: no user, domain or password, no autologon.
NO_CREDENTIALS = clientinfo.InfoPacket()
#: Server PDUs read after the Client Info before giving up on a Demand Active.
MAX_PDUS = 64


#: A later feature's next steps after the Demand Active, given the live walk (its send_data,
#: read_domain and keys); it raises Stop (via the walk's reads) to end with a named outcome.
Continuation = Callable[[Walk], Awaitable[None]]


def _stop_facts(walk: Walk, kind: StopKind, reason: str) -> SessionFacts:
    return replace(walk.facts, stopped_at=walk.step, stop_kind=kind, stop_reason=reason)


async def _connect(walk: Walk, selected: int, channels: tuple[tuple[str, int], ...]):
    core = gcc_client.ClientCore(server_selected_protocol=selected)
    user_data = gcc_client.build_client_data(
        selected_protocol=selected, encryption_methods=OFFERED_METHODS, channels=channels,
        core=core,
    )  # fmt: skip
    await walk.send(mcs.build_connect_initial(user_data))
    data = await walk.read()
    try:
        reply = mcs.parse_server_pdu(data)
    except ProtocolError as exc:
        raise Stop(StopKind.GARBAGE, f"malformed MCS Connect Response: {exc}") from None
    if isinstance(reply, mcs.DisconnectProviderUltimatum):
        walk.facts = replace(walk.facts, ultimatum=reply.reason_name)
        raise Stop(StopKind.ULTIMATUM, f"MCS Disconnect Provider Ultimatum {reply.reason_name}")
    if reply.result != mcs.Result.RT_SUCCESSFUL:
        raise Stop(StopKind.REFUSED, f"MCS Connect Response result {reply.result_name}")
    try:
        server = gcc_server.parse_conference_create_response(reply.user_data)
    except ProtocolError as exc:
        raise Stop(StopKind.GARBAGE, f"malformed GCC server data: {exc}") from None
    walk.mark(Step.MCS_CONNECT)
    return server


async def _join(walk: Walk, channel: int) -> None:
    await walk.send(mcs_domain.build_channel_join_request(walk.user, channel))
    pdu = await walk.read_domain()
    if not isinstance(pdu, mcs_domain.ChannelJoinConfirm):
        raise Stop(StopKind.GARBAGE, f"expected Channel Join Confirm, got {type(pdu).__name__}")
    if pdu.result != mcs.Result.RT_SUCCESSFUL:
        raise Stop(StopKind.REFUSED, f"join of channel {channel} refused: {pdu.result_name}")


async def _security_exchange(walk: Walk, sec: gcc_server.ServerSecurity) -> None:
    walk.step = Step.SECURITY_EXCHANGE
    if sec.certificate is None or len(sec.server_random) != rdpcrypt.RANDOM_LEN:
        detail = sec.certificate_error or f"server random of {len(sec.server_random)} bytes"
        raise Stop(StopKind.UNSUPPORTED, f"no usable server certificate ({detail})")
    try:
        modulus, exponent = rdpcrypt.server_public_key(sec.certificate)
        client_random = os.urandom(rdpcrypt.RANDOM_LEN)
        encrypted = rdpcrypt.encrypt_client_random(client_random, modulus, exponent)
        keys = rdpcrypt.derive_keys(client_random, sec.server_random, sec.encryption_method)
    except ProtocolError as exc:
        raise Stop(StopKind.UNSUPPORTED, f"security exchange impossible: {exc.reason}") from None
    walk.crypt = rdpcrypt.Session(keys)
    fips = sec.encryption_method == EncryptionMethod.ENCRYPTION_METHOD_FIPS
    walk.send_kind = walk.recv_kind = HeaderKind.FIPS if fips else HeaderKind.NON_FIPS
    exchange = sechdr.build_security_exchange(encrypted)
    await walk.send(mcs_domain.build_send_data(walk.user, walk.io, exchange))
    walk.mark(Step.SECURITY_EXCHANGE)


def _demand_facts(pdu: share.DemandActive) -> DemandActiveFacts:
    caps = tuple(CapabilityFact(c.name, len(c.body) + 4, c.fields) for c in pdu.capability_sets)
    text = pdu.source_descriptor.split(b"\x00", 1)[0].decode("latin-1")
    return DemandActiveFacts(pdu.share_id, text, pdu.session_id, caps)


async def _read_until_demand(walk: Walk, gcc_cert: rdpsec.ServerCertificate | None) -> None:
    walk.step = Step.LICENSING
    for _ in range(MAX_PDUS):
        pdu = await walk.read_domain()
        if not isinstance(pdu, mcs_domain.SendData) or not pdu.indication:
            walk.pdus.append(type(pdu).__name__)
            continue
        try:
            header, body = unwrap(walk, pdu.data)
            if header.flags & SecurityFlag.SEC_LICENSE_PKT:
                await handle_licensing(walk, header, body, gcc_cert)
                continue
            if pdu.channel_id != walk.io:
                walk.pdus.append(f"data on channel {pdu.channel_id}")
                continue
            message = share.parse_share_pdu(body)
        except ProtocolError as exc:
            raise Stop(StopKind.GARBAGE, f"malformed server PDU: {exc}") from None
        if isinstance(message, share.DemandActive):
            walk.pdus.append("Demand Active")
            walk.facts = replace(walk.facts, demand_active=_demand_facts(message))
            walk.mark(Step.DEMAND_ACTIVE)
            return
        if isinstance(message, share.SetErrorInfo):
            walk.pdus.append(f"Set Error Info {message.name}")
            walk.errors.append(ErrorInfoFact(message.error_info, message.name, walk.step))
        elif isinstance(message, share.DeactivateAll):
            walk.pdus.append("Deactivate All")
            walk.facts = replace(walk.facts, deactivate_all=True)
        elif isinstance(message, share.DataPdu):
            walk.pdus.append(message.type2_name)
        else:
            walk.pdus.append(message.header.type_name)
    raise Stop(StopKind.GARBAGE, f"no Demand Active among {MAX_PDUS} server PDUs")


async def walk_session(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    selected_protocol: int,
    deadline: Deadline,
    step_timeout: float,
    started: float,
    rtt_ms: float | None = None,
    earlier: tuple[StepTime, ...] = (),
    channels: tuple[tuple[str, int], ...] = (),
    info: clientinfo.InfoPacket = NO_CREDENTIALS,
    continue_with: Continuation | None = None,
) -> SessionFacts:
    """From right after the Connection Confirm (and TLS, when SSL was selected) to the Demand
    Active. ``started``: time.monotonic() at the TCP connect; ``earlier``: steps already timed.
    ``info`` may carry credentials (a later opt-in feature; they are never logged or kept in
    the facts). ``continue_with``, if given, runs after the Demand Active on the open, keyed
    connection (to send a Confirm Active and go on); rdprobe itself stops there.
    Closes the connection; never raises for what the server does."""
    path = "rdp" if selected_protocol == 0 else "tls"
    facts = SessionFacts(path, selected_protocol, rtt_ms=rtt_ms)
    walk = Walk(reader, writer, deadline, step_timeout, started, facts, steps=list(earlier))
    try:
        await _walk(walk, selected_protocol, channels, info)
        if continue_with is not None and walk.facts.reached_logon:
            await continue_with(walk)
        final = walk.facts
    except Stop as stop:
        final = _stop_facts(walk, stop.kind, stop.reason)
    finally:
        try:
            writer.write(x224.build_data(mcs.build_disconnect_provider_ultimatum()))
            await asyncio.wait_for(writer.drain(), min(0.5, deadline.remaining() + 0.1))
        except Exception:  # a closed or hostile peer: closing is all that is left
            pass
        await close_writer(writer, timeout=0.5)
    return replace(final, steps=tuple(walk.steps), pdus_received=tuple(walk.pdus),
                   error_info=tuple(walk.errors))  # fmt: skip


async def _walk(
    walk: Walk,
    selected: int,
    channels: tuple[tuple[str, int], ...],
    info: clientinfo.InfoPacket,
) -> None:
    server = await _connect(walk, selected, channels)
    sec = server.security
    method = sec.encryption_method if sec else 0
    level = sec.encryption_level if sec else 0
    walk.facts = replace(
        walk.facts,
        encryption_method=gcc.SHORT_METHOD.get(method, f"0x{method:x}"),
        encryption_level=gcc.SHORT_LEVEL.get(level, str(level)),
    )
    walk.io = server.network.io_channel if server.network else 1003
    walk.step = Step.ERECT_DOMAIN
    await walk.send(mcs_domain.build_erect_domain_request())
    await walk.send(mcs_domain.build_attach_user_request())
    walk.mark(Step.ERECT_DOMAIN)
    walk.step = Step.ATTACH_USER
    confirm = await walk.read_domain()
    if not isinstance(confirm, mcs_domain.AttachUserConfirm):
        raise Stop(StopKind.GARBAGE, f"expected Attach User Confirm, got {type(confirm).__name__}")
    if confirm.result != mcs.Result.RT_SUCCESSFUL or confirm.initiator is None:
        raise Stop(StopKind.REFUSED, f"Attach User refused: {confirm.result_name}")
    walk.user = confirm.initiator
    walk.mark(Step.ATTACH_USER)
    walk.step = Step.CHANNEL_JOIN
    wanted = [walk.user, walk.io, *(server.network.channel_ids if server.network else ())]
    for channel in wanted:
        await _join(walk, channel)
    walk.facts = replace(walk.facts, user_channel=walk.user, io_channel=walk.io,
                         joined_channels=tuple(wanted))  # fmt: skip
    walk.mark(Step.CHANNEL_JOIN)
    if selected == 0 and method != EncryptionMethod.ENCRYPTION_METHOD_NONE and sec is not None:
        await _security_exchange(walk, sec)
    walk.step = Step.CLIENT_INFO
    header = walk.send_kind if walk.crypt is not None else HeaderKind.BASIC
    await walk.send_data(clientinfo.build_info_packet(info), SecurityFlag.SEC_INFO_PKT,
                         header=header)  # fmt: skip
    walk.mark(Step.CLIENT_INFO)
    await _read_until_demand(walk, sec.certificate if sec else None)
