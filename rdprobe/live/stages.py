"""The later stages of `check` (depth full): TLS, TLS versions, NLA, MCS, UDP.

Each stage opens its own connection through the X.224 exchange the matrix showed works, asks the
server one more question, and sets its typed facts (``rdprobe.analysis.facts``) on the
observation. Judgement of those facts lives in rdprobe.analysis.judges, so the pcap path and the
tests judge the same objects. ``STAGES`` is the ordered list ``check`` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rdprobe.analysis.certificate import describe_chain
from rdprobe.analysis.facts import (
    McsFacts,
    NlaFacts,
    TlsFacts,
    TlsFallbackFacts,
    TlsVersionsFacts,
)
from rdprobe.analysis.observations import Attempt, TargetObservation
from rdprobe.live import mcs as live_mcs
from rdprobe.live import nla as live_nla
from rdprobe.live import tls as live_tls
from rdprobe.live import udp as live_udp
from rdprobe.live.negotiate import MATRIX, Request, attempt
from rdprobe.live.target import Target
from rdprobe.live.timing import Deadline, close_writer
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol, protocol_name

if TYPE_CHECKING:
    from rdprobe.live.check import CheckOptions


@dataclass
class StageContext:
    """What a later stage gets: where to connect, what was learnt, and the limits."""

    target: Target
    address: str
    observation: TargetObservation
    options: CheckOptions
    deadline: Deadline
    host_limit: asyncio.Semaphore


class StageSkipped(Exception):
    """A stage could not take the server that far this time; the reason is recorded."""


TLS_PROTOCOLS = Protocol.SSL | Protocol.HYBRID | Protocol.HYBRID_EX
NLA_PROTOCOLS = Protocol.HYBRID | Protocol.HYBRID_EX


def _selected(a: Attempt) -> int | None:
    if isinstance(a.tpdu, ConnectionConfirm) and isinstance(
        a.tpdu.negotiation, NegotiationResponse
    ):
        return a.tpdu.negotiation.selected
    return None


def _request_selecting(ctx: StageContext, wanted: int, order: tuple[str, ...]) -> Request | None:
    """The matrix request (preferred in ``order``) whose answer selected one of ``wanted``."""
    by_label = {a.label: a for a in ctx.observation.attempts}
    for label in order:
        a = by_label.get(label)
        sel = _selected(a) if a else None
        if sel is not None and sel & wanted:
            return next(r for r in MATRIX if r.label == label)
    return None


async def _open(
    ctx: StageContext, request: Request
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A fresh connection positioned right after a Connection Confirm for ``request``."""
    async with ctx.host_limit:
        a, streams = await attempt(
            ctx.address,
            ctx.target.port,
            request,
            cookie=ctx.options.cookie,
            timeouts=ctx.options.timeouts,
            deadline=ctx.deadline,
            keep_open=True,
        )
    if streams is None or not isinstance(a.tpdu, ConnectionConfirm):
        raise StageSkipped(
            f"no Connection Confirm for {request.label}: {a.error or a.reply_kind or a.tcp}"
        )
    neg = a.tpdu.negotiation
    if neg is not None and not isinstance(neg, NegotiationResponse):
        await close_writer(streams[1])
        raise StageSkipped(f"{request.label} refused this time ({neg.code_name})")
    return streams[0], streams[1], neg.selected if neg else 0


def _hostname(ctx: StageContext) -> str | None:
    return None if ctx.target.is_literal else ctx.target.host


def _step(ctx: StageContext) -> float:
    return ctx.deadline.limit(ctx.options.timeouts.read)


async def _open_tls(
    ctx: StageContext, request: Request
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, live_tls.TlsResult]:
    """A fresh connection through the confirm for ``request``, upgraded to TLS (or its error);
    the caller closes the writer."""
    reader, writer, selected = await _open(ctx, request)
    try:
        result = await live_tls.upgrade(
            reader, writer, server_hostname=_hostname(ctx), timeout=_step(ctx)
        )
    except BaseException:
        await close_writer(writer)
        raise
    return reader, writer, selected, result


async def tls_stage(ctx: StageContext) -> None:
    order = ("SSL", "SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
    request = _request_selecting(ctx, TLS_PROTOCOLS, order)
    if request is None:
        return
    _reader, writer, selected, result = await _open_tls(ctx, request)
    await close_writer(writer)
    fallback = await _tls_fallback(ctx, request) if result.error else None
    ctx.observation.tls = TlsFacts(
        request=request.label,
        selected=protocol_name(selected),
        version=result.version,
        cipher=result.cipher,
        cipher_bits=result.cipher_bits,
        error=result.error,
        chain=describe_chain(result.chain_der),
        server_name=ctx.target.host,
        fallback=fallback,
    )
    await _tls_versions(ctx, request)


async def _tls_fallback(ctx: StageContext, request: Request) -> TlsFallbackFacts:
    """What a server the local OpenSSL could not talk to offers to a hand-built TLS 1.0 hello
    (RC4/3DES/AES-CBC suites), on a fresh connection."""
    try:
        reader, writer, _sel = await _open(ctx, request)
    except StageSkipped as exc:
        return TlsFallbackFacts(error=str(exc))
    try:
        result = await live_tls.legacy_hello(
            reader, writer, timeout=_step(ctx), server_name=_hostname(ctx)
        )
    finally:
        await close_writer(writer)
    return TlsFallbackFacts(
        version=result.version,
        cipher=result.cipher,
        cipher_code=result.cipher_code,
        alert=result.alert,
        server_hello_done=result.server_hello_done,
        bytes_read=result.bytes_read,
        error=result.error,
        chain=describe_chain(result.chain_der),  # raw from the wire: OpenSSL has not parsed these
    )


async def _tls_versions(ctx: StageContext, request: Request) -> None:
    async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer, _sel = await _open(ctx, request)
        return reader, writer

    versions = await live_tls.version_matrix(open_stream, timeout=_step(ctx))
    ctx.observation.tls_versions = TlsVersionsFacts(dict(versions))


async def nla_stage(ctx: StageContext) -> None:
    order = ("SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
    request = _request_selecting(ctx, NLA_PROTOCOLS, order)
    if request is None:
        return
    reader, writer, selected, tls = await _open_tls(ctx, request)
    try:
        if tls.error:
            ctx.observation.nla = NlaFacts(
                protocol_name(selected), None, None, f"TLS before CredSSP failed: {tls.error}"
            )
            return
        result = await live_nla.nla_probe(reader, writer, timeout=_step(ctx))
    finally:
        await close_writer(writer)
    ctx.observation.nla = NlaFacts(
        selected=protocol_name(selected),
        challenge=result.challenge,
        tsrequest_version=result.tsrequest_version,
        error=result.error,
        error_code=result.error_code,
        observed_at=datetime.now(UTC),
    )


async def mcs_stage(ctx: StageContext) -> None:
    by_label = {a.label: a for a in ctx.observation.attempts}
    rdp = by_label.get("RDP")
    legacy = by_label.get("no negotiation")
    if rdp is not None and _selected(rdp) == 0:
        request = next(r for r in MATRIX if r.label == "RDP")
    elif (
        rdp is not None and isinstance(rdp.tpdu, ConnectionConfirm) and rdp.tpdu.negotiation is None
    ):
        request = next(r for r in MATRIX if r.label == "RDP")  # a legacy server
    elif (
        legacy is not None
        and isinstance(legacy.tpdu, ConnectionConfirm)
        and legacy.tpdu.negotiation is None
    ):
        request = next(r for r in MATRIX if r.label == "no negotiation")
    else:
        return

    async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
        return await _open(ctx, request)

    reader, writer, selected = await open_stream()
    first = await live_mcs.mcs_probe(reader, writer, selected_protocol=selected, timeout=_step(ctx))
    methods = {}
    if first.server_data is not None:
        methods = await live_mcs.encryption_matrix(open_stream, timeout=_step(ctx))
    ctx.observation.mcs = McsFacts(request=request.label, **vars(first), methods=methods)


async def udp_stage(ctx: StageContext) -> None:
    if not ctx.options.udp:
        return
    result = await live_udp.udp_probe(ctx.address, ctx.target.port, timeout=_step(ctx), retries=2)
    ctx.observation.udp = result


Stage = Callable[[StageContext], Awaitable[None]]
#: (name, stage, needs an RDP answer): run in this order; each sets observation.<name>
#: (the TLS stage also sets tls_versions). A new stage is one more line here.
STAGES: tuple[tuple[str, Stage, bool], ...] = (
    ("tls", tls_stage, True),
    ("nla", nla_stage, True),
    ("mcs", mcs_stage, True),
    ("udp", udp_stage, False),
)
