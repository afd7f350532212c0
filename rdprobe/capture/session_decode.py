"""The connection sequence after the MCS Connect Response, as a capture shows it (issue 10).

Passive twin of rdprobe.live.session: from the TPKT PDUs of both directions in capture order,
the same SessionFacts. Only what crosses in clear is decoded: everything at
ENCRYPTION_LEVEL_NONE, and the server-to-client PDUs at level LOW (only the client encrypts
there, MS-RDPBCGR 5.3.2). Encrypted PDUs and TLS end the decode with "the rest was encrypted".
"""

from __future__ import annotations

from dataclasses import replace

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
from rdprobe.protocol import gcc, licensing, mcs, mcs_domain, sechdr, share, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.sechdr import HeaderKind, SecurityFlag

CLIENT, SERVER = "c", "s"
ENCRYPTED = "the rest was encrypted"


class _Done(Exception):
    def __init__(self, kind: StopKind | None, reason: str | None) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _message_name(pdu: licensing.LicensePdu) -> str:
    if isinstance(pdu, licensing.OtherLicensePdu):
        return pdu.type_name
    return {
        licensing.ErrorAlert: "ERROR_ALERT", licensing.LicenseRequest: "LICENSE_REQUEST",
        licensing.PlatformChallenge: "PLATFORM_CHALLENGE",
        licensing.NewLicenseRequest: "NEW_LICENSE_REQUEST",
    }[type(pdu)]  # fmt: skip


class _Decoder:
    def __init__(self, selected: int, method: int, level: int, start: float) -> None:
        self.facts = SessionFacts("rdp" if selected == 0 else "tls", selected)
        self.tls = selected != 0
        self.clear_level = level == 0 or method == 0
        self.start = start
        self.step = Step.ERECT_DOMAIN
        self.steps: list[StepTime] = []
        self.pdus: list[str] = []
        self.errors: list[ErrorInfoFact] = []
        self.licensing: LicensingFacts | None = None
        self.joined: list[int] = []

    def mark(self, step: Step, ts: float) -> None:
        if all(s.step is not step for s in self.steps):
            self.steps.append(StepTime(step, round((ts - self.start) * 1000, 2)))

    def feed(self, direction: str, ts: float, pdu: bytes) -> None:
        if self.tls:
            raise _Done(StopKind.ENCRYPTED, f"{ENCRYPTED} (TLS)")
        message = mcs_domain.parse_domain_pdu(x224.parse_data(pdu))
        if isinstance(message, mcs.DisconnectProviderUltimatum):
            side = "server" if direction == SERVER else "client"
            self.facts = replace(self.facts, ultimatum=message.reason_name)
            raise _Done(StopKind.ULTIMATUM, f"{side} sent a Disconnect Provider Ultimatum "
                        f"{message.reason_name}")  # fmt: skip
        if direction == CLIENT:
            self._client(ts, message)
        else:
            self._server(ts, message)

    def _client(self, ts: float, message: mcs_domain.DomainMessage) -> None:
        if isinstance(message, mcs_domain.ErectDomainRequest):
            self.mark(Step.ERECT_DOMAIN, ts)
            self.step = Step.ATTACH_USER
        elif isinstance(message, mcs_domain.SendData) and len(message.data) >= 4:
            flags = int.from_bytes(message.data[:2], "little")
            if flags & SecurityFlag.SEC_EXCHANGE_PKT:
                self.mark(Step.SECURITY_EXCHANGE, ts)
                self.step = Step.CLIENT_INFO
            elif flags & SecurityFlag.SEC_INFO_PKT:
                self.mark(Step.CLIENT_INFO, ts)
                self.step = Step.LICENSING

    def _server(self, ts: float, message: mcs_domain.DomainMessage) -> None:
        if isinstance(message, mcs_domain.AttachUserConfirm):
            self.facts = replace(self.facts, user_channel=message.initiator)
            self.mark(Step.ATTACH_USER, ts)
            self.step = Step.CHANNEL_JOIN
        elif isinstance(message, mcs_domain.ChannelJoinConfirm):
            self.joined.append(message.requested)
            self.mark(Step.CHANNEL_JOIN, ts)
        elif isinstance(message, mcs_domain.SendData):
            self._server_data(ts, message)

    def _server_data(self, ts: float, message: mcs_domain.SendData) -> None:
        body = message.data
        if self.clear_level and len(body) >= 2 and int.from_bytes(body[:2], "little") == len(body):
            header, rest = sechdr.SecurityHeader(0), body
        else:
            header, rest = sechdr.parse_header(body, HeaderKind.BASIC)
        if header.encrypted:
            raise _Done(StopKind.ENCRYPTED, ENCRYPTED)
        if header.flags & SecurityFlag.SEC_LICENSE_PKT:
            lic = licensing.parse_license_pdu(rest)
            name = _message_name(lic)
            self.pdus.append(f"licensing {name}")
            base = self.licensing or LicensingFacts("other", name)
            base = replace(base, message=name, messages=(*base.messages, f"server {name}"))
            if isinstance(lic, licensing.ErrorAlert):
                base = replace(base, outcome="valid_client" if lic.valid_client else "error",
                               error_code=lic.error_code, error_name=lic.error_name,
                               state_transition=lic.transition_name)  # fmt: skip
                self.mark(Step.LICENSING, ts)
                self.step = Step.DEMAND_ACTIVE
            elif isinstance(lic, licensing.LicenseRequest):
                base = replace(base, outcome="license_request", company=lic.product.company_name,
                               product_id=lic.product.product_id, scopes=lic.scopes)  # fmt: skip
            elif isinstance(lic, licensing.PlatformChallenge):
                base = replace(base, outcome="platform_challenge")
            self.licensing = base
            return
        pdu = share.parse_share_pdu(rest)
        if isinstance(pdu, share.DemandActive):
            caps = tuple(CapabilityFact(c.name, len(c.body) + 4, c.fields)
                         for c in pdu.capability_sets)  # fmt: skip
            text = pdu.source_descriptor.split(b"\x00", 1)[0].decode("latin-1")
            self.facts = replace(self.facts, demand_active=DemandActiveFacts(
                pdu.share_id, text, pdu.session_id, caps))  # fmt: skip
            self.pdus.append("Demand Active")
            self.mark(Step.DEMAND_ACTIVE, ts)
            raise _Done(None, None)
        if isinstance(pdu, share.SetErrorInfo):
            self.pdus.append(f"Set Error Info {pdu.name}")
            self.errors.append(ErrorInfoFact(pdu.error_info, pdu.name, self.step))
        elif isinstance(pdu, share.DeactivateAll):
            self.pdus.append("Deactivate All")
            self.facts = replace(self.facts, deactivate_all=True)


def decode_session(
    pdus: list[tuple[str, float, bytes]],
    *,
    selected_protocol: int,
    encryption_method: int,
    encryption_level: int,
    started: float,
    rtt_ms: float | None = None,
    io_channel: int | None = None,
    ended: str = "the capture ends",
) -> SessionFacts:
    """``pdus``: (CLIENT or SERVER, timestamp, one whole TPKT PDU) after the MCS Connect
    Response, in capture order; ``started``: the timestamp of the SYN. Never raises."""
    d = _Decoder(selected_protocol, encryption_method, encryption_level, started)
    d.facts = replace(
        d.facts,
        encryption_method=gcc.SHORT_METHOD.get(encryption_method, f"0x{encryption_method:x}"),
        encryption_level=gcc.SHORT_LEVEL.get(encryption_level, str(encryption_level)),
        io_channel=io_channel,
    )
    kind, reason = StopKind.CLOSED, ended
    try:
        for direction, ts, pdu in pdus:
            d.feed(direction, ts, pdu)
    except _Done as done:
        kind, reason = done.kind, done.reason  # type: ignore[assignment]
    except ProtocolError as exc:
        kind, reason = StopKind.GARBAGE, f"malformed PDU: {exc}"
    facts = replace(d.facts, steps=tuple(d.steps), pdus_received=tuple(d.pdus),
                    error_info=tuple(d.errors), licensing=d.licensing, rtt_ms=rtt_ms,
                    joined_channels=tuple(d.joined))  # fmt: skip
    if facts.reached_logon:
        return facts
    return replace(facts, stopped_at=d.step, stop_kind=kind, stop_reason=reason)
