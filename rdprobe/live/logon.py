"""After the Demand Active, with credentials: Confirm Active, finalization, and the server's
logon notification (MS-RDPBCGR 1.3.1.1, 2.2.1.13.2-2.2.1.18, 2.2.10.1).

A continuation for rdprobe.live.session.walk_session, used only by `check --user`: the
credential-free walk stops at the Demand Active; a logon needs the client to finish the
connection so the server's logon (winlogon on Windows) can run. It waits for the Save Session
Info PDU, the notification that marks success (or carries the logon error), a Set Error Info,
or the server's disconnect, for at most one step of the target's time; then the walk ends with a
Disconnect Provider Ultimatum, as a client does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from rdprobe.analysis.session_facts import ErrorInfoFact, StopKind
from rdprobe.live.session import Continuation
from rdprobe.live.session_io import Stop, Walk, read_failures, unwrap
from rdprobe.live.timing import Deadline
from rdprobe.protocol import finalize, mcs, mcs_domain, share, tpkt, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.share import PduType2

#: Server PDUs read after the finalization before giving up on a logon notification
MAX_PDUS_AFTER = 512


@dataclass
class LogonWatch:
    """What the continuation saw (filled in while it runs)."""

    finalized: bool = False
    notification: finalize.LogonNotification | None = None
    pdus: list[str] = field(default_factory=list)

    @property
    def screen_updates(self) -> bool:
        """The server sent its screen (fast-path or slow-path updates): the session is live."""
        return any(p in ("fast-path updates", "PDUTYPE2_UPDATE") for p in self.pdus)

    def to_dict(self) -> dict[str, object]:
        return {
            "finalized": self.finalized,
            "screen_updates": self.screen_updates,
            "logon_notification": self.notification.to_dict() if self.notification else None,
            "pdus_after_finalization": self.pdus[:32],
        }


def finish_and_watch(watch: LogonWatch, wait_s: float) -> Continuation:
    """The continuation: finalize the connection, then read until the logon notification."""

    async def run(walk: Walk) -> None:
        demand = walk.facts.demand_active
        assert demand is not None  # walk_session calls this only after a Demand Active
        await walk.send_data(finalize.build_confirm_active(demand.share_id, walk.user))
        for message_out in finalize.build_finalization(demand.share_id, walk.user):
            await walk.send_data(message_out)
        watch.finalized = True
        limit = Deadline(wait_s)
        walk.step_timeout = min(walk.step_timeout, wait_s)
        for _ in range(MAX_PDUS_AFTER):
            if limit.expired:
                return
            payload = await _read(walk)
            if payload is None:
                if not watch.pdus or watch.pdus[-1] != "fast-path updates":
                    watch.pdus.append("fast-path updates")
                continue
            try:
                pdu = mcs_domain.parse_domain_pdu(payload)
            except ProtocolError as exc:
                raise Stop(StopKind.GARBAGE, f"malformed MCS PDU: {exc}") from None
            if isinstance(pdu, mcs.DisconnectProviderUltimatum):
                walk.facts = replace(walk.facts, ultimatum=pdu.reason_name)
                watch.pdus.append(f"MCS Disconnect Provider Ultimatum ({pdu.reason_name})")
                raise Stop(
                    StopKind.ULTIMATUM, f"MCS Disconnect Provider Ultimatum {pdu.reason_name}"
                )
            if not isinstance(pdu, mcs_domain.SendData) or not pdu.indication:
                watch.pdus.append(type(pdu).__name__)
                continue
            if pdu.channel_id != walk.io:
                watch.pdus.append(f"data on channel {pdu.channel_id}")
                continue
            try:
                _header, body = unwrap(walk, pdu.data)
                message = share.parse_share_pdu(body)
                if isinstance(message, share.DataPdu) and (
                    message.pdu_type2 == PduType2.PDUTYPE2_SAVE_SESSION_INFO
                ):
                    watch.notification = finalize.parse_save_session_info(message.body)
                    watch.pdus.append(f"Save Session Info {watch.notification.info_type_name}")
                    if watch.notification.final:
                        return
                    continue
            except ProtocolError as exc:
                raise Stop(
                    StopKind.GARBAGE, f"malformed server PDU after the logon: {exc}"
                ) from None
            if isinstance(message, share.SetErrorInfo):
                watch.pdus.append(f"Set Error Info {message.name}")
                walk.errors.append(ErrorInfoFact(message.error_info, message.name, walk.step))
            elif isinstance(message, share.DeactivateAll):
                watch.pdus.append("Deactivate All")
                walk.facts = replace(walk.facts, deactivate_all=True)
            elif isinstance(message, share.DataPdu):
                watch.pdus.append(message.type2_name)
            elif isinstance(message, share.OtherSharePdu):
                watch.pdus.append(message.header.type_name)
            else:  # a Demand Active: the server reactivates (2.2.3.1)
                watch.pdus.append("Demand Active")

    return run


async def _read(walk: Walk) -> bytes | None:
    """The next server PDU: an X.224 Data payload, or None for a fast-path update (2.2.9.1.2),
    skipped (after the finalization a server may send its screen that way; over TLS nothing
    in it is encrypted by RDP, so skipping it loses no key stream)."""
    limit = walk.deadline.limit(walk.step_timeout)
    with read_failures(limit, "an RDP PDU"):
        async with asyncio.timeout(limit):
            first = await walk.reader.readexactly(1)
            if first[0] == tpkt.VERSION:
                head = first + await walk.reader.readexactly(tpkt.HEADER_LEN - 1)
                rest = await walk.reader.readexactly(tpkt.frame_length(head) - tpkt.HEADER_LEN)
                return x224.parse_data(head + rest)
            if first[0] & 0x03:
                raise ProtocolError(f"neither TPKT nor fast-path: 0x{first[0]:02x}")
            size = (await walk.reader.readexactly(1))[0]
            used = 2
            if size & 0x80:
                size = ((size & 0x7F) << 8) | (await walk.reader.readexactly(1))[0]
                used = 3
            if size < used:
                raise ProtocolError(f"fast-path length {size}")
            await walk.reader.readexactly(size - used)
            return None
