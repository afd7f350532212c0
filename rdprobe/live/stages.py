"""The later stages of `check` (depth full): TLS, TLS versions, NLA, MCS, UDP.

Each stage opens its own connection through the X.224 exchange the matrix showed works, asks the
server one more question, and stores JSON-ready facts in observation.stages[name]. Judgement of
those facts lives in rdprobe.analysis.judges, so the pcap path can reuse it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from rdprobe.analysis.certificate import describe_certificate
from rdprobe.analysis.observations import Attempt
from rdprobe.analysis.trust import verify_chain
from rdprobe.analysis.windows_versions import describe_windows_version
from rdprobe.live import mcs as live_mcs
from rdprobe.live import nla as live_nla
from rdprobe.live import tls as live_tls
from rdprobe.live import udp as live_udp
from rdprobe.live.check import StageContext, StageSkipped, register_stage
from rdprobe.live.negotiate import MATRIX, Request, attempt
from rdprobe.live.timing import close_writer
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol, protocol_name

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


@register_stage("tls")
async def tls_stage(ctx: StageContext) -> None:
    order = ("SSL", "SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
    request = _request_selecting(ctx, TLS_PROTOCOLS, order)
    if request is None:
        return
    _reader, writer, selected, result = await _open_tls(ctx, request)
    await close_writer(writer)
    now = datetime.now(UTC)
    chain = [
        describe_certificate(der, target_name=ctx.target.host, now=now).to_dict()
        for der in result.chain_der
    ]
    facts: dict[str, Any] = {
        "request": request.label,
        "selected": protocol_name(selected),
        "version": result.version,
        "cipher": result.cipher,
        "cipher_bits": result.cipher_bits,
        "error": result.error,
        "chain": chain,
    }
    if result.chain_der:
        trust = verify_chain(
            list(result.chain_der), ca_file=ctx.options.ca_file, hostname=_hostname(ctx), now=now
        )
        facts["trust"] = {"trusted": trust.trusted, "reason": trust.reason}
    if result.error:
        facts["summary"] = f"handshake failed: {result.error}"
        fallback = await _tls_fallback(ctx, request, now)
        facts["fallback"] = fallback
        if fallback.get("version"):
            leaf = (fallback.get("chain") or [{}])[0]
            facts["summary"] += (
                f"; a TLS 1.0 hello with legacy suites got {fallback['version']} "
                f"{fallback['cipher']}, certificate {leaf.get('subject')}"
            )
    else:
        leaf = chain[0] if chain else {}
        facts["summary"] = (
            f"{result.version} {result.cipher}; certificate {leaf.get('subject')}, "
            f"expires {leaf.get('not_after')}"
        )
    ctx.observation.stages["tls"] = facts
    await _tls_versions(ctx, request)


async def _tls_fallback(ctx: StageContext, request: Request, now: datetime) -> dict[str, Any]:
    """What a server the local OpenSSL could not talk to offers to a hand-built TLS 1.0 hello
    (RC4/3DES/AES-CBC suites), on a fresh connection."""
    try:
        reader, writer, _sel = await _open(ctx, request)
    except StageSkipped as exc:
        return {"error": str(exc), "chain": []}
    try:
        result = await live_tls.legacy_hello(
            reader, writer, timeout=_step(ctx), server_name=_hostname(ctx)
        )
    finally:
        await close_writer(writer)
    out = result.to_dict()
    out["chain"] = []
    for der in result.chain_der:  # raw from the wire: OpenSSL has not parsed these
        try:
            out["chain"].append(
                describe_certificate(der, target_name=ctx.target.host, now=now).to_dict()
            )
        except ProtocolError as exc:
            out["chain"].append({"error": str(exc)})
    if result.chain_der:
        trust = verify_chain(
            list(result.chain_der), ca_file=ctx.options.ca_file, hostname=_hostname(ctx), now=now
        )
        out["trust"] = {"trusted": trust.trusted, "reason": trust.reason}
    return out


async def _tls_versions(ctx: StageContext, request: Request) -> None:
    async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer, _sel = await _open(ctx, request)
        return reader, writer

    versions = await live_tls.version_matrix(open_stream, timeout=_step(ctx))
    accepted = [v for v, state in versions.items() if state == live_tls.ACCEPTED]
    ctx.observation.stages["tls_versions"] = {
        "versions": versions,
        "accepted": accepted,
        "summary": "accepted: " + (", ".join(accepted) or "none"),
    }


@register_stage("nla")
async def nla_stage(ctx: StageContext) -> None:
    order = ("SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
    request = _request_selecting(ctx, NLA_PROTOCOLS, order)
    if request is None:
        return
    reader, writer, selected, tls = await _open_tls(ctx, request)
    try:
        if tls.error:
            ctx.observation.stages["nla"] = {"error": f"TLS before CredSSP failed: {tls.error}"}
            return
        result = await live_nla.nla_probe(reader, writer, timeout=_step(ctx))
    finally:
        await close_writer(writer)
    facts: dict[str, Any] = {"selected": protocol_name(selected), **result.to_dict()}
    facts["observed_at"] = datetime.now(UTC).isoformat()
    ch = result.challenge
    if ch is not None:
        if ch.version is not None:
            major, minor, build = ch.version[:3]
            facts["os"] = describe_windows_version(major, minor, build)
        name = ch.dns_computer or ch.nb_computer or ch.target_name
        domain = ch.dns_domain or ch.nb_domain
        facts["summary"] = (
            f"{name}"
            + (f" in {domain}" if domain and domain.lower() != str(name).lower() else "")
            + (f", {facts['os']}" if "os" in facts else "")
            + f", TSRequest v{result.tsrequest_version}"
        )
    else:
        facts["summary"] = f"no NTLM challenge: {result.error}"
    ctx.observation.stages["nla"] = facts


@register_stage("mcs")
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
    facts: dict[str, Any] = {"request": request.label, **first.to_dict()}
    if first.server_data is None:
        facts["summary"] = f"MCS Connect failed: {first.error}"
        ctx.observation.stages["mcs"] = facts
        return
    matrix = await live_mcs.encryption_matrix(open_stream, timeout=_step(ctx))
    sec = first.server_data.security
    verdict = live_mcs.infer_encryption_level(
        sec.encryption_level if sec else None, matrix, selected_protocol=selected
    )
    facts["methods"] = {k: v.to_dict() for k, v in matrix.items()}
    facts["encryption_level"] = verdict.to_dict()
    core = first.server_data.core
    parts = [core.version_name if core else "RDP version unknown"]
    if sec is not None:
        parts.append(f"{sec.method_name} / level {verdict.setting}")
        cert = sec.certificate
        if cert is not None:
            parts.append(
                f"{cert.cert_type} certificate"
                + (
                    ""
                    if cert.cert_type != "proprietary"
                    else (", signature OK" if cert.verified else ", BAD signature")
                )
            )
    facts["summary"] = "; ".join(parts)
    ctx.observation.stages["mcs"] = facts


@register_stage("udp", needs_rdp=False)
async def udp_stage(ctx: StageContext) -> None:
    if not ctx.options.udp:
        return
    result = await live_udp.udp_probe(ctx.address, ctx.target.port, timeout=_step(ctx), retries=2)
    facts = result.to_dict()
    facts["summary"] = {
        "synack": f"UDP transport answers (reply/probe {result.amplification})",
        "closed": "closed (ICMP port unreachable)",
        "silent": "no answer (filtered or UDP transport disabled)",
    }.get(result.outcome, f"{result.outcome}: {result.error}")
    ctx.observation.stages["udp"] = facts
