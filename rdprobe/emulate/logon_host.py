"""An NLA session host for `check --user` (spec-built): CredSSP, then the session sequence in
TLS, then a logon outcome.

CredSSP is served by rdprobe.emulate.credssp_server (a real NTLM acceptor); inside TLS the
session sequence is rdprobe.emulate.session_host's (MCS, Attach User, Channel Joins, the PDUs
after the Client Info). After the client's Confirm Active and Font List it answers the server
half of the finalization (MS-RDPBCGR 2.2.1.14-2.2.1.22: Synchronize, Control Cooperate,
Control Granted, Font Map), then ``after_logon``: a Save Session Info (2.2.10.1), a Set Error
Info, an ultimatum. No Windows capture of any of this was available, and MS-RDPBCGR does not
say at which step Windows sends a given Set Error Info: these profiles place it after the
logon, where a refused account is known.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rdprobe.emulate.behaviours import NegotiationPolicy, Reply, Then
from rdprobe.emulate.credssp_server import CredSspPolicy, CredSspSession
from rdprobe.emulate.session_host import SHARE_ID, SessionHost, indication
from rdprobe.protocol import finalize, mcs_domain, share, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.share import PduType, PduType2
from rdprobe.protocol.x224 import NegotiationResponse
from rdprobe.protocol.x224 import Protocol as P

NLA_ONLY = NegotiationPolicy(P.SSL | P.HYBRID, False, True, flags=0x0F)
DEFAULT_CREDSSP = CredSspPolicy()


def _data(pdu_type2: int, payload: bytes) -> bytes:
    return indication(share.build_data_pdu(SHARE_ID, 1002, pdu_type2, payload))


def server_finalization() -> bytes:
    """Synchronize, Control Cooperate, Control Granted Control, Font Map (2.2.1.19-2.2.1.22)."""
    return b"".join(
        (
            _data(PduType2.PDUTYPE2_SYNCHRONIZE, struct.pack("<HH", 1, 1007)),
            _data(PduType2.PDUTYPE2_CONTROL, struct.pack("<HHI", 4, 0, 0)),
            _data(PduType2.PDUTYPE2_CONTROL, struct.pack("<HHI", 2, 1007, 0x03EA)),
            _data(PduType2.PDUTYPE2_FONTMAP, struct.pack("<HHHH", 0, 0, 3, 4)),
        )
    )


def save_session_info(notification: finalize.LogonNotification) -> bytes:
    return _data(
        PduType2.PDUTYPE2_SAVE_SESSION_INFO, finalize.build_save_session_info(notification)
    )


@dataclass(frozen=True)
class NlaLogonHost(SessionHost):
    """NLA listener: CredSSP under ``credssp``, then SessionHost inside TLS, then
    ``after_logon`` once the client has finalized, followed by ``then_after``."""

    policy: NegotiationPolicy = NLA_ONLY
    credssp: CredSspPolicy = DEFAULT_CREDSSP
    after_logon: tuple[bytes, ...] = ()
    then_after: Then = Then.HOLD
    tls: bool = True

    def request(self, req: x224.ConnectionRequest) -> Reply:
        neg = self.policy.decide(req.negotiation.requested if req.negotiation else None)
        confirm = x224.build_confirm(neg)
        if not isinstance(neg, NegotiationResponse):
            return Reply(confirm, Then.CLOSE)
        return Reply(confirm, Then.TLS)

    def credssp_session(
        self, req: x224.ConnectionRequest | None, certificate_der: bytes
    ) -> CredSspSession | None:
        if req is None or req.negotiation is None:
            return None
        neg = self.policy.decide(req.negotiation.requested)
        if not isinstance(neg, NegotiationResponse) or not neg.selected & (P.HYBRID | P.HYBRID_EX):
            return None
        return CredSspSession(self.credssp, certificate_der, bool(neg.selected & P.HYBRID_EX))

    def tls_data(self, pdu: bytes) -> Reply:
        try:
            message = mcs_domain.parse_domain_pdu(x224.parse_data(pdu))
        except ProtocolError:
            message = None
        if isinstance(message, mcs_domain.SendData):
            try:
                header = share.parse_control_header(message.data)
            except ProtocolError:
                header = None
            if header is not None and header.pdu_type == PduType.PDUTYPE_CONFIRMACTIVEPDU:
                return Reply()
            if header is not None and header.pdu_type == PduType.PDUTYPE_DATAPDU:
                body = message.data[6:]
                if len(body) >= 12 and body[8] == PduType2.PDUTYPE2_FONTLIST:
                    payload = server_finalization() + b"".join(self.after_logon)
                    return Reply(payload, self.then_after)
                return Reply()
        return self.data(pdu)
