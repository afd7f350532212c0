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
import time
from dataclasses import dataclass, field, replace

from rdprobe.analysis.session_facts import (
    CapabilityFact,
    DemandActiveFacts,
    ErrorInfoFact,
    LicensingFacts,
    SessionFacts,
    Step,
    StepTime,
    StopKind,
)
from rdprobe.live.timing import Deadline, close_writer
from rdprobe.protocol import (
    clientinfo,
    gcc,
    gcc_client,
    gcc_server,
    licensing,
    mcs,
    mcs_domain,
    rdpcrypt,
    rdpsec,
    sechdr,
    share,
    tpkt,
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


class _Stop(Exception):
    def __init__(self, kind: StopKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class _Walk:
    """Mutable state of one walk; frozen into SessionFacts at the end."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    deadline: Deadline
    step_timeout: float
    started: float
    facts: SessionFacts
    step: Step = Step.MCS_CONNECT
    steps: list[StepTime] = field(default_factory=list)
    pdus: list[str] = field(default_factory=list)
    errors: list[ErrorInfoFact] = field(default_factory=list)
    crypt: rdpcrypt.Session | None = None
    send_kind: HeaderKind = HeaderKind.NONE
    recv_kind: HeaderKind = HeaderKind.NONE
    user: int = 0
    io: int = 1003
    sent_license_request: bool = False

    def mark(self, step: Step) -> None:
        self.steps.append(StepTime(step, round((time.monotonic() - self.started) * 1000, 2)))

    async def send(self, payload: bytes) -> None:
        self.writer.write(x224.build_data(payload))
        try:
            await asyncio.wait_for(self.writer.drain(), self.deadline.limit(self.step_timeout))
        except (OSError, TimeoutError) as exc:
            raise _Stop(StopKind.CLOSED, f"could not send: {type(exc).__name__} {exc}") from None

    async def read(self) -> bytes:
        """One X.224 Data payload, under the deadline."""
        limit = self.deadline.limit(self.step_timeout)
        try:
            async with asyncio.timeout(limit):
                head = await self.reader.readexactly(tpkt.HEADER_LEN)
                length = tpkt.frame_length(head)
                rest = await self.reader.readexactly(length - tpkt.HEADER_LEN)
        except TimeoutError:
            raise _Stop(StopKind.TIMEOUT, f"no whole PDU within {limit:.1f} s") from None
        except asyncio.IncompleteReadError as exc:
            got = f" after {len(exc.partial)} bytes of a PDU" if exc.partial else ""
            raise _Stop(StopKind.CLOSED, f"the server closed the connection{got}") from None
        except ConnectionError as exc:
            raise _Stop(StopKind.CLOSED, f"connection reset ({exc})") from None
        except ProtocolError as exc:
            raise _Stop(StopKind.GARBAGE, f"not a TPKT PDU: {exc}") from None
        try:
            return x224.parse_data(head + rest)
        except ProtocolError as exc:
            raise _Stop(StopKind.GARBAGE, f"not an X.224 Data TPDU: {exc}") from None

    async def read_domain(self) -> mcs_domain.DomainMessage:
        data = await self.read()
        try:
            pdu = mcs_domain.parse_domain_pdu(data)
        except ProtocolError as exc:
            raise _Stop(StopKind.GARBAGE, f"malformed MCS PDU: {exc}") from None
        if isinstance(pdu, mcs.DisconnectProviderUltimatum):
            self.facts = replace(self.facts, ultimatum=pdu.reason_name)
            self.pdus.append(f"MCS Disconnect Provider Ultimatum ({pdu.reason_name})")
            raise _Stop(StopKind.ULTIMATUM, f"MCS Disconnect Provider Ultimatum {pdu.reason_name}")
        return pdu

    async def send_data(self, body: bytes, flags: int = 0, *, header: HeaderKind | None = None):
        """A Send Data Request on the I/O channel, secured as negotiated."""
        kind = self.send_kind if header is None else header
        if self.crypt is not None and kind in (HeaderKind.NON_FIPS, HeaderKind.FIPS):
            signature, body, padding = self.crypt.protect(body)
            flags |= SecurityFlag.SEC_ENCRYPT
            head = sechdr.build_header(kind, flags, signature=signature, fips_padding=padding)
        else:
            head = sechdr.build_header(
                HeaderKind.BASIC if kind is not HeaderKind.NONE else kind, flags
            )
        await self.send(mcs_domain.build_send_data(self.user, self.io, head + body))


def _stop_facts(walk: _Walk, kind: StopKind, reason: str) -> SessionFacts:
    return replace(walk.facts, stopped_at=walk.step, stop_kind=kind, stop_reason=reason)


async def _connect(walk: _Walk, selected: int, channels: tuple[tuple[str, int], ...]):
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
        raise _Stop(StopKind.GARBAGE, f"malformed MCS Connect Response: {exc}") from None
    if isinstance(reply, mcs.DisconnectProviderUltimatum):
        walk.facts = replace(walk.facts, ultimatum=reply.reason_name)
        raise _Stop(StopKind.ULTIMATUM, f"MCS Disconnect Provider Ultimatum {reply.reason_name}")
    if reply.result != mcs.Result.RT_SUCCESSFUL:
        raise _Stop(StopKind.REFUSED, f"MCS Connect Response result {reply.result_name}")
    try:
        server = gcc_server.parse_conference_create_response(reply.user_data)
    except ProtocolError as exc:
        raise _Stop(StopKind.GARBAGE, f"malformed GCC server data: {exc}") from None
    walk.mark(Step.MCS_CONNECT)
    return server


async def _join(walk: _Walk, channel: int) -> None:
    await walk.send(mcs_domain.build_channel_join_request(walk.user, channel))
    pdu = await walk.read_domain()
    if not isinstance(pdu, mcs_domain.ChannelJoinConfirm):
        raise _Stop(StopKind.GARBAGE, f"expected Channel Join Confirm, got {type(pdu).__name__}")
    if pdu.result != mcs.Result.RT_SUCCESSFUL:
        raise _Stop(StopKind.REFUSED, f"join of channel {channel} refused: {pdu.result_name}")


async def _security_exchange(walk: _Walk, sec: gcc_server.ServerSecurity) -> None:
    walk.step = Step.SECURITY_EXCHANGE
    if sec.certificate is None or len(sec.server_random) != rdpcrypt.RANDOM_LEN:
        detail = sec.certificate_error or f"server random of {len(sec.server_random)} bytes"
        raise _Stop(StopKind.UNSUPPORTED, f"no usable server certificate ({detail})")
    try:
        modulus, exponent = rdpcrypt.server_public_key(sec.certificate)
        client_random = os.urandom(rdpcrypt.RANDOM_LEN)
        encrypted = rdpcrypt.encrypt_client_random(client_random, modulus, exponent)
        keys = rdpcrypt.derive_keys(client_random, sec.server_random, sec.encryption_method)
    except ProtocolError as exc:
        raise _Stop(StopKind.UNSUPPORTED, f"security exchange impossible: {exc.reason}") from None
    walk.crypt = rdpcrypt.Session(keys)
    fips = sec.encryption_method == EncryptionMethod.ENCRYPTION_METHOD_FIPS
    walk.send_kind = walk.recv_kind = HeaderKind.FIPS if fips else HeaderKind.NON_FIPS
    exchange = sechdr.build_security_exchange(encrypted)
    await walk.send(mcs_domain.build_send_data(walk.user, walk.io, exchange))
    walk.mark(Step.SECURITY_EXCHANGE)


def _licensing_facts(
    pdu: licensing.LicensePdu, encrypted: bool, before: LicensingFacts | None
) -> LicensingFacts:
    """The licensing facts after one more server message (the request's product info kept)."""
    base = before or LicensingFacts("other", "")
    name = pdu.type_name if isinstance(pdu, licensing.OtherLicensePdu) else {
        licensing.ErrorAlert: "ERROR_ALERT", licensing.LicenseRequest: "LICENSE_REQUEST",
        licensing.PlatformChallenge: "PLATFORM_CHALLENGE",
        licensing.NewLicenseRequest: "NEW_LICENSE_REQUEST",
    }[type(pdu)]  # fmt: skip
    common = dict(message=name, messages=(*base.messages, f"server {name}"),
                  encrypted=base.encrypted or encrypted)  # fmt: skip
    if isinstance(pdu, licensing.ErrorAlert):
        outcome = "valid_client" if pdu.valid_client else "error"
        return replace(base, outcome=outcome, error_code=pdu.error_code,
                       error_name=pdu.error_name, state_transition=pdu.transition_name,
                       **common)  # type: ignore[arg-type]  # fmt: skip
    if isinstance(pdu, licensing.LicenseRequest):
        return replace(base, outcome="license_request", company=pdu.product.company_name,
                       product_id=pdu.product.product_id, product_version=pdu.product.version,
                       scopes=pdu.scopes, **common)  # type: ignore[arg-type]  # fmt: skip
    if isinstance(pdu, licensing.PlatformChallenge):
        return replace(base, outcome="platform_challenge", **common)  # type: ignore[arg-type]
    issued = name in ("NEW_LICENSE", "UPGRADE_LICENSE")
    return replace(base, outcome="license_issued" if issued else "other", **common)  # type: ignore[arg-type]


def _new_license_request(
    walk: _Walk, request: licensing.LicenseRequest, gcc_cert: rdpsec.ServerCertificate | None
) -> bytes:
    """The answer of a client without a licence: a random premaster secret encrypted with the
    licensing certificate of the request (or, when it is empty, the GCC one)."""
    cert = gcc_cert
    if request.certificate:
        try:
            cert = rdpsec.parse_server_certificate(request.certificate)
        except ProtocolError as exc:
            raise _Stop(StopKind.UNSUPPORTED, f"unreadable licensing certificate: {exc}") from None
    if cert is None:
        raise _Stop(StopKind.UNSUPPORTED, "License Request without a usable certificate")
    try:
        modulus, exponent = rdpcrypt.server_public_key(cert)
        value = int.from_bytes(os.urandom(48), "little") % modulus
        size = (modulus.bit_length() + 7) // 8
        premaster = pow(value, exponent, modulus).to_bytes(size, "little") + b"\x00" * 8
    except ProtocolError as exc:
        raise _Stop(StopKind.UNSUPPORTED, f"licensing key unusable: {exc.reason}") from None
    return licensing.build_new_license_request(os.urandom(32), premaster)


def _demand_facts(pdu: share.DemandActive) -> DemandActiveFacts:
    caps = tuple(CapabilityFact(c.name, len(c.body) + 4, c.fields) for c in pdu.capability_sets)
    text = pdu.source_descriptor.split(b"\x00", 1)[0].decode("latin-1")
    return DemandActiveFacts(pdu.share_id, text, pdu.session_id, caps)


def _unwrap(walk: _Walk, body: bytes) -> tuple[sechdr.SecurityHeader, bytes]:
    """Security header off a server PDU, decrypted and its MAC checked when encrypted."""
    kind = walk.recv_kind
    if kind is HeaderKind.NONE:
        # No header on share PDUs here, but licensing PDUs still carry a basic one: a share
        # control header's totalLength is the PDU's own length, a licensing one is not.
        if len(body) >= 2 and int.from_bytes(body[:2], "little") == len(body):
            return sechdr.SecurityHeader(0), body
        kind = HeaderKind.BASIC
    header, rest = sechdr.parse_header(body, kind)
    if header.encrypted:
        if walk.crypt is None:
            raise ProtocolError("encrypted PDU but no security exchange took place")
        try:
            rest = walk.crypt.unprotect(
                header.signature, rest, padding=header.fips_padding,
                salted=bool(header.flags & SecurityFlag.SEC_SECURE_CHECKSUM),
            )  # fmt: skip
        except ProtocolError as exc:
            raise _Stop(StopKind.MAC, exc.reason) from None
    return header, rest


async def _licensing(
    walk: _Walk,
    header: sechdr.SecurityHeader,
    body: bytes,
    gcc_cert: rdpsec.ServerCertificate | None,
) -> None:
    lic = licensing.parse_license_pdu(body)
    facts = _licensing_facts(lic, header.encrypted, walk.facts.licensing)
    walk.pdus.append(f"licensing {facts.message}")
    if isinstance(lic, licensing.LicenseRequest) and walk.sent_license_request:
        raise _Stop(StopKind.LICENSING, "the server repeated its License Request")
    if isinstance(lic, licensing.LicenseRequest):
        answer = _new_license_request(walk, lic, gcc_cert)
        facts = replace(facts, messages=(*facts.messages, "client NEW_LICENSE_REQUEST"))
        walk.facts = replace(walk.facts, licensing=facts)
        await walk.send_data(answer, SecurityFlag.SEC_LICENSE_PKT, header=HeaderKind.BASIC)
        walk.sent_license_request = True
        return
    walk.facts = replace(walk.facts, licensing=facts)
    if facts.outcome == "platform_challenge":
        raise _Stop(StopKind.LICENSING, "the server sent a Platform Challenge: a full licence "
                    "exchange, which rdprobe does not carry out")  # fmt: skip
    if facts.outcome == "error" and facts.state_transition == "ST_TOTAL_ABORT":
        raise _Stop(StopKind.LICENSING, f"licensing error {facts.error_name} (total abort)")
    walk.mark(Step.LICENSING)
    walk.step = Step.DEMAND_ACTIVE


async def _read_until_demand(walk: _Walk, gcc_cert: rdpsec.ServerCertificate | None) -> None:
    walk.step = Step.LICENSING
    for _ in range(MAX_PDUS):
        pdu = await walk.read_domain()
        if not isinstance(pdu, mcs_domain.SendData) or not pdu.indication:
            walk.pdus.append(type(pdu).__name__)
            continue
        try:
            header, body = _unwrap(walk, pdu.data)
            if header.flags & SecurityFlag.SEC_LICENSE_PKT:
                await _licensing(walk, header, body, gcc_cert)
                continue
            if pdu.channel_id != walk.io:
                walk.pdus.append(f"data on channel {pdu.channel_id}")
                continue
            message = share.parse_share_pdu(body)
        except ProtocolError as exc:
            raise _Stop(StopKind.GARBAGE, f"malformed server PDU: {exc}") from None
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
    raise _Stop(StopKind.GARBAGE, f"no Demand Active among {MAX_PDUS} server PDUs")


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
) -> SessionFacts:
    """From right after the Connection Confirm (and TLS, when SSL was selected) to the Demand
    Active. ``started``: time.monotonic() at the TCP connect; ``earlier``: steps already timed.
    Closes the connection; never raises for what the server does."""
    path = "rdp" if selected_protocol == 0 else "tls"
    facts = SessionFacts(path, selected_protocol, rtt_ms=rtt_ms)
    walk = _Walk(reader, writer, deadline, step_timeout, started, facts, steps=list(earlier))
    try:
        await _walk(walk, selected_protocol, channels, info)
        final = walk.facts
    except _Stop as stop:
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
    walk: _Walk,
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
        raise _Stop(StopKind.GARBAGE, f"expected Attach User Confirm, got {type(confirm).__name__}")
    if confirm.result != mcs.Result.RT_SUCCESSFUL or confirm.initiator is None:
        raise _Stop(StopKind.REFUSED, f"Attach User refused: {confirm.result_name}")
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
