"""The I/O half of the session walk: one connection's state, framed and secured reads and
writes under the target's deadline, and the named stop (``Stop``) every failure becomes.

MS-RDPBCGR 2.2.8.1.1.2 (security headers on every PDU once Standard RDP Security is keyed),
5.3.6 (encryption and MAC per PDU). Used by rdprobe.live.session and its licensing steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from rdprobe.analysis.session_facts import ErrorInfoFact, SessionFacts, Step, StepTime, StopKind
from rdprobe.live.frames import read_frame
from rdprobe.live.timing import Deadline
from rdprobe.protocol import mcs, mcs_domain, rdpcrypt, sechdr, tpkt, x224
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.sechdr import HeaderKind, SecurityFlag


class Stop(Exception):
    def __init__(self, kind: StopKind, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@contextlib.contextmanager
def read_failures(limit: float, what: str) -> Iterator[None]:
    """One home for how a failed read of a server PDU is named: a timeout, a close (with how
    far the PDU had come), a reset, or bytes that are not ``what``."""
    try:
        yield
    except TimeoutError:
        raise Stop(StopKind.TIMEOUT, f"no whole PDU within {limit:.1f} s") from None
    except asyncio.IncompleteReadError as exc:
        got = f" after {len(exc.partial)} bytes of a PDU" if exc.partial else ""
        raise Stop(StopKind.CLOSED, f"the server closed the connection{got}") from None
    except ConnectionError as exc:
        raise Stop(StopKind.CLOSED, f"connection reset ({exc})") from None
    except ProtocolError as exc:
        raise Stop(StopKind.GARBAGE, f"not {what}: {exc}") from None


@dataclass
class Walk:
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
            raise Stop(StopKind.CLOSED, f"could not send: {type(exc).__name__} {exc}") from None

    async def read(self) -> bytes:
        """One X.224 Data payload, under the deadline."""
        limit = self.deadline.limit(self.step_timeout)
        with read_failures(limit, "a TPKT PDU"):
            pdu = await read_frame(self.reader, tpkt.frame_length, limit)
        try:
            return x224.parse_data(pdu)
        except ProtocolError as exc:
            raise Stop(StopKind.GARBAGE, f"not an X.224 Data TPDU: {exc}") from None

    async def read_domain(self) -> mcs_domain.DomainMessage:
        data = await self.read()
        try:
            pdu = mcs_domain.parse_domain_pdu(data)
        except ProtocolError as exc:
            raise Stop(StopKind.GARBAGE, f"malformed MCS PDU: {exc}") from None
        if isinstance(pdu, mcs.DisconnectProviderUltimatum):
            self.facts = replace(self.facts, ultimatum=pdu.reason_name)
            self.pdus.append(f"MCS Disconnect Provider Ultimatum ({pdu.reason_name})")
            raise Stop(StopKind.ULTIMATUM, f"MCS Disconnect Provider Ultimatum {pdu.reason_name}")
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


def unwrap(walk: Walk, body: bytes) -> tuple[sechdr.SecurityHeader, bytes]:
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
            raise Stop(StopKind.MAC, exc.reason) from None
    return header, rest
