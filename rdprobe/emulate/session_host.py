"""A session host that walks a client to the Demand Active, for Windows-only answers (spec-built).

Standard RDP Security at encryption level NONE (no keys needed): Connection Confirm selecting
PROTOCOL_RDP, MCS Connect Response, Attach User and Channel Join Confirms, then, after the
Client Info PDU, a scripted list of server PDUs — licensing Error Alerts, Set Error Info,
Deactivate All, Demand Active, Disconnect Provider Ultimatum — built from MS-RDPBCGR 2.2.1.12,
2.2.1.13.1, 2.2.3.1, 2.2.5.1 and MS-RDPELE 2.2.2 (no Windows capture of these was available,
so every profile using this behaviour is labelled spec-built). ``fail`` makes it stop, drip or
send garbage at a named step instead: the hostile servers of the session tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rdprobe.emulate.behaviours import CLOSE, Behaviour, NegotiationPolicy, Reply, Then
from rdprobe.protocol import (
    capabilities,
    gcc_server,
    licensing,
    mcs,
    mcs_domain,
    share,
    x224,
)
from rdprobe.protocol.capabilities import CapsType
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.mcs_domain import (
    AttachUserRequest,
    ChannelJoinRequest,
    ErectDomainRequest,
    SendData,
)
from rdprobe.protocol.sechdr import SecurityFlag

SERVER_CHANNEL = 1002
IO_CHANNEL = 1003
USER_CHANNEL = 1007
SHARE_ID = 0x000103EA
STEPS = ("mcs", "attach", "join", "info")
_STANDARD_ONLY = NegotiationPolicy(external=0, standard_rdp=True)


def indication(payload: bytes, channel: int = IO_CHANNEL) -> bytes:
    return x224.build_data(
        mcs_domain.build_send_data(SERVER_CHANNEL, channel, payload, indication=True)
    )


def license_pdu(message: bytes) -> bytes:
    """A licensing PDU with its basic security header (SEC_LICENSE_PKT), as on the wire."""
    return indication(bytes([SecurityFlag.SEC_LICENSE_PKT, 0, 0, 0]) + message)


def valid_client() -> bytes:
    return license_pdu(licensing.build_error_alert())


def license_error(code: int, transition: int) -> bytes:
    return license_pdu(licensing.build_error_alert(code, transition))


def set_error_info(code: int) -> bytes:
    return indication(share.build_set_error_info(code))


def demand_active() -> bytes:
    """A Windows-shaped Demand Active: general (Windows NT), bitmap 1024x768x32, share."""
    sets = (
        capabilities.build_set(CapsType.CAPSTYPE_SHARE, b"\xea\x03\x00\x00")
        + capabilities.build_general()
        + capabilities.build_bitmap()
    )
    return indication(share.build_demand_active(SHARE_ID, sets, 3, session_id=1))


def deactivate_all() -> bytes:
    return indication(share.build_deactivate_all(SHARE_ID))


def ultimatum(reason: int = mcs.Reason.RN_PROVIDER_INITIATED) -> bytes:
    return x224.build_data(mcs.build_disconnect_provider_ultimatum(reason))


def _connect_response() -> bytes:
    data = gcc_server.ServerData(
        gcc_server.ServerCore(0x00080004, 0, None, 12),
        gcc_server.ServerNetwork(IO_CHANNEL, ()),
        gcc_server.ServerSecurity(0, 0),
    )
    return x224.build_data(mcs.build_connect_response(gcc_server.build_server_data(data)))


@dataclass(frozen=True)
class SessionHost(Behaviour):
    """``after_info``: the server PDUs sent once the Client Info arrives, then ``then``.
    ``fail``/``how``: at that step (one of STEPS) send nothing and hold ("silent"), close
    ("close"), send garbage ("garbage") or drip the right answer a byte at a time ("drip")."""

    after_info: tuple[bytes, ...] = ()
    then: Then = Then.HOLD
    fail: str | None = None
    how: str = "silent"
    drip: float = 0.3
    #: seconds to wait after the Client Info before answering (a busy session host)
    delay: float = 0.0

    def request(self, req: x224.ConnectionRequest) -> Reply:
        """Security layer RDP: TLS requests refused with SSL_NOT_ALLOWED_BY_SERVER."""
        neg = _STANDARD_ONLY.decide(req.negotiation.requested if req.negotiation else None)
        confirm = x224.build_confirm(neg)
        if isinstance(neg, x224.NegotiationFailure):
            return Reply(confirm, Then.CLOSE)
        return Reply(confirm, Then.READ)

    def _answer(self, step: str, data: bytes, then: Then = Then.READ) -> Reply:
        if step != self.fail:
            return Reply(data, then)
        if self.how == "close":
            return CLOSE
        if self.how == "garbage":
            return Reply(random.Random(10).randbytes(40), Then.HOLD)
        if self.how == "drip":
            return Reply(data, then, drip=self.drip)
        return Reply(then=Then.HOLD)

    def data(self, pdu: bytes) -> Reply:
        try:
            payload = x224.parse_data(pdu)
            if payload[:2] == b"\x7f\x65":
                return self._answer("mcs", _connect_response())
            message = mcs_domain.parse_domain_pdu(payload)
        except ProtocolError:
            return CLOSE
        if isinstance(message, ErectDomainRequest):
            return Reply()
        if isinstance(message, AttachUserRequest):
            confirm = mcs_domain.build_attach_user_confirm(0, USER_CHANNEL)
            return self._answer("attach", x224.build_data(confirm))
        if isinstance(message, ChannelJoinRequest):
            confirm = mcs_domain.build_channel_join_confirm(
                0, message.initiator, message.channel_id, message.channel_id
            )
            return self._answer("join", x224.build_data(confirm))
        if isinstance(message, SendData) and message.data[:1] == bytes([SecurityFlag.SEC_INFO_PKT]):
            reply = self._answer("info", b"".join(self.after_info), self.then)
            return Reply(reply.data, reply.then, reply.drip, swallow=self.delay)
        if isinstance(message, SendData):
            return Reply()  # a licensing answer or anything else: absorbed
        return CLOSE
