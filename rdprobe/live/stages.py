"""The later stages of `check` (depth full): TLS, TLS versions, NLA, MCS, UDP.

Each stage goes on from the X.224 exchange the matrix showed works (the matrix row's own
connection when check kept it open for it, else a fresh one), asks the server one more question,
and sets its typed facts (``rdprobe.analysis.facts``) on the observation. A server is not asked
again what an earlier answer already showed: the TLS versions the stage's handshake settled, the
encryption method the first MCS probe chose; and one TLS handshake serves the TLS and NLA stages
when the row they both prefer selected HYBRID; a kept row no stage goes on from serves one
probe that needs only its confirm (``SPARES``). Judgement of those facts lives in
rdprobe.analysis.judges, so the pcap path and the tests judge the same objects. ``STAGES`` is the
ordered list ``check`` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rdprobe.analysis.certificate import describe_chain, match_name
from rdprobe.analysis.certificate_verdict import judged_chain
from rdprobe.analysis.facts import (
    McsFacts,
    NameLookup,
    NlaFacts,
    TlsFacts,
    TlsFallbackFacts,
    TlsVersionsFacts,
    leaf_of,
)
from rdprobe.analysis.observations import Attempt, TargetObservation
from rdprobe.live import mcs as live_mcs
from rdprobe.live import nla as live_nla
from rdprobe.live import tls as live_tls
from rdprobe.live import udp as live_udp
from rdprobe.live.names import lookup_all, lookup_mode, lookup_names
from rdprobe.live.negotiate import MATRIX, Request, attempt
from rdprobe.live.target import Target
from rdprobe.live.timing import CLOSE_LIMIT_S, Deadline, close_writer
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse, Protocol, protocol_name

if TYPE_CHECKING:
    from rdprobe.live.check import CheckOptions


@dataclass
class StageContext:
    """What a later stage gets: where to connect, what was learnt, and the limits.

    ``rows`` are the matrix attempts as they finish (a stage waits only for the rows it needs);
    ``kept`` the connections of rows that check kept open, right after their confirm, for the
    stage preferring that row: (reader, writer, selected protocol) by row label, taken by it."""

    target: Target
    address: str
    observation: TargetObservation
    options: CheckOptions
    deadline: Deadline
    host_limit: asyncio.Semaphore
    rows: dict[str, asyncio.Future[Attempt]] = field(default_factory=dict)
    kept: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter, int]] = field(
        default_factory=dict
    )

    #: the TLS stage's word to the NLA stage when both run: True once it has left its TLS
    #: connection, selecting HYBRID, in ``kept`` under HANDED_TLS for the CredSSP round trip
    tls_for_nla: asyncio.Future[bool] | None = None

    def __post_init__(self) -> None:
        runs = self.options.stages
        if runs is None or {"tls", "nla"} <= runs:
            self.tls_for_nla = asyncio.get_running_loop().create_future()

    async def row(self, label: str) -> Attempt | None:
        """The matrix attempt ``label`` once it has finished (None: the row was not run)."""
        fut = self.rows.get(label)
        return None if fut is None else await asyncio.shield(fut)


class StageSkipped(Exception):
    """A stage could not take the server that far this time; the reason is recorded."""


TLS_PROTOCOLS = Protocol.SSL | Protocol.HYBRID | Protocol.HYBRID_EX
NLA_PROTOCOLS = Protocol.HYBRID | Protocol.HYBRID_EX
#: The ``kept`` key of the TLS stage's connection, handed on to the NLA stage after its handshake.
HANDED_TLS = "TLS handed to NLA"


def _selected(a: Attempt) -> int | None:
    if isinstance(a.tpdu, ConnectionConfirm) and isinstance(
        a.tpdu.negotiation, NegotiationResponse
    ):
        return a.tpdu.negotiation.selected
    return None


def _is_legacy(a: Attempt | None) -> bool:
    """A confirm without negotiation data: a server from before RDP 5.2 (or its behaviour)."""
    return a is not None and isinstance(a.tpdu, ConnectionConfirm) and a.tpdu.negotiation is None


def _confirm_selects(cc: ConnectionConfirm, wanted: int | None) -> bool:
    """Does the confirm select one of ``wanted`` (None: PROTOCOL_RDP itself)?"""
    neg = cc.negotiation
    if not isinstance(neg, NegotiationResponse):
        return False
    return neg.selected == 0 if wanted is None else bool(neg.selected & wanted)


def _selects_rdp(cc: ConnectionConfirm) -> bool:
    return cc.negotiation is None or _confirm_selects(cc, None)


#: The matrix rows whose connection check keeps open after a confirm that passes the test, for
#: the stage named: the row the stage prefers to go on from, or a spare (``SPARES``).
FIRST_CHOICE: dict[str, tuple[str, Callable[[ConnectionConfirm], bool]]] = {
    "SSL": ("tls", lambda cc: _confirm_selects(cc, TLS_PROTOCOLS)),
    "SSL|HYBRID": ("nla", lambda cc: _confirm_selects(cc, NLA_PROTOCOLS)),
    "RDP": ("mcs", _selects_rdp),
    # the MCS stage's path where the RDP row refused RDP, else a spare
    "no negotiation": ("mcs", lambda cc: cc.negotiation is None),
    "RDSTLS": ("mcs", _selects_rdp),  # a spare: Windows selects RDP for RDSTLS alone
}
#: Kept rows no stage goes on from, by stage: each serves one of the stage's probes that need
#: only a connection through such a confirm (a pinned TLS version, an MCS method alone) in place
#: of a fresh one: the same request's answer on the same listener, and three connections less
#: per Windows 2012 listener for both ends (docs/benchmarks.md).
SPARES: dict[str, tuple[str, ...]] = {"tls": ("SSL",), "mcs": ("RDSTLS", "no negotiation")}


async def _request_selecting(
    ctx: StageContext, wanted: int, order: tuple[str, ...]
) -> Request | None:
    """The matrix request (preferred in ``order``) whose answer selected one of ``wanted``,
    decided as soon as the rows it depends on have answered, not after the whole matrix."""
    for label in order:
        a = await ctx.row(label)
        sel = _selected(a) if a else None
        if sel is not None and sel & wanted:
            return next(r for r in MATRIX if r.label == label)
    return None


async def _open(
    ctx: StageContext, request: Request
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A connection positioned right after a Connection Confirm for ``request``: the matrix
    row's own when check kept it open for this stage, else a fresh one."""
    kept = ctx.kept.pop(request.label, None)
    if kept is not None:
        return kept
    return await _open_fresh(ctx, request)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter, int]


def _spare_or_fresh(
    ctx: StageContext, request: Request, spares: list[str]
) -> Callable[[], Awaitable[Streams]]:
    """An opener for probes that each need a connection of their own through a confirm for
    ``request``: the kept connection of the next row of ``spares`` (taken from the list at the
    call, used once its answer is in), else a fresh one."""

    async def open_stream() -> Streams:
        while spares:
            label = spares.pop(0)
            await ctx.row(label)
            kept = ctx.kept.pop(label, None)
            if kept is not None:
                return kept
        return await _open_fresh(ctx, request)

    return open_stream


async def _give_back_all(ctx: StageContext, labels: tuple[str, ...]) -> None:
    """Close the kept connections of ``labels`` no probe took, once their answers are in."""
    await asyncio.gather(*(_give_back(ctx, label) for label in labels))


async def _open_fresh(ctx: StageContext, request: Request) -> Streams:
    """Always a new connection (for the probes that each need their own)."""
    _require_time(ctx)
    a, streams = await attempt(
        ctx.address,
        ctx.target.port,
        request,
        cookie=ctx.options.cookie,
        timeouts=ctx.options.timeouts,
        deadline=ctx.deadline,
        keep_open=True,
        opening=ctx.host_limit,
    )
    if streams is None or not isinstance(a.tpdu, ConnectionConfirm):
        raise StageSkipped(
            f"no Connection Confirm for {request.label}: {a.error or a.reply_kind or a.tcp}"
        )
    neg = a.tpdu.negotiation
    if neg is not None and not isinstance(neg, NegotiationResponse):
        await close_writer(streams[1], _close(ctx))
        raise StageSkipped(f"{request.label} refused this time ({neg.code_name})")
    return streams[0], streams[1], neg.selected if neg else 0


def _hostname(ctx: StageContext) -> str | None:
    return None if ctx.target.is_literal else ctx.target.host


def _step(ctx: StageContext, step: str | None = None) -> float:
    """A step's time: --timeout, cut by what is left of the target's deadline."""
    return ctx.deadline.limit(ctx.options.timeouts.read, step)


def _close(ctx: StageContext, step: str | None = None) -> float:
    """A close's time: CLOSE_LIMIT_S, cut by what is left of the target's deadline."""
    return ctx.deadline.limit(CLOSE_LIMIT_S, step)


def _require_time(ctx: StageContext) -> None:
    """No time left: the stage is skipped, saying where the deadline ran out."""
    if ctx.deadline.expired:
        raise StageSkipped(ctx.deadline.reason())


async def _open_tls(
    ctx: StageContext, request: Request, step: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, live_tls.TlsResult]:
    """A fresh connection through the confirm for ``request``, upgraded to TLS (or its error);
    the caller closes the writer."""
    reader, writer, selected = await _open(ctx, request)
    try:
        result = await live_tls.upgrade(
            reader, writer, server_hostname=_hostname(ctx), timeout=_step(ctx, step)
        )
    except BaseException:
        await close_writer(writer, _close(ctx))
        raise
    return reader, writer, selected, result


async def tls_stage(ctx: StageContext) -> None:
    handed = False
    try:
        handed = await _tls_stage(ctx)
    finally:
        if ctx.tls_for_nla is not None and not ctx.tls_for_nla.done():
            ctx.tls_for_nla.set_result(handed)


async def _tls_stage(ctx: StageContext) -> bool:
    """The handshake, the pinned versions and the certificate's names; True when the connection
    was left open for the NLA stage (``StageContext.tls_for_nla``)."""
    # one handshake serves both stages when the NLA stage will go on from the same row: it is
    # the NLA stage's first choice, and the server selected HYBRID on it
    nla_row = await ctx.row("SSL|HYBRID") if ctx.tls_for_nla is not None else None
    share = nla_row is not None and bool((_selected(nla_row) or 0) & NLA_PROTOCOLS)
    if share:
        request: Request | None = next(r for r in MATRIX if r.label == "SSL|HYBRID")
    else:
        order = ("SSL", "SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
        request = await _request_selecting(ctx, TLS_PROTOCOLS, order)
    # the SSL row, kept for this stage, is a spare when it goes on from another row
    spares = list(SPARES["tls"]) if share else []
    if request is None:
        await _give_back_all(ctx, tuple(spares))
        return False
    # the pinned-version probes need only the request: the oldest versions are asked while this
    # handshake runs, the ones it says nothing of (rdprobe.live.tls.seen_in_handshake) right after
    opener = _spare_or_fresh(ctx, request, spares)
    probes = [asyncio.create_task(_probe_versions(opener, ctx, live_tls.PROBED_EARLY))]
    try:
        reader, writer, selected, result = await _open_tls(ctx, request, "tls: TLS handshake")
        seen = live_tls.seen_in_handshake(result.version)
        later = tuple(
            n for n in live_tls.VERSIONS if n not in seen and n not in live_tls.PROBED_EARLY
        )
        if later:  # none once the handshake agreed on TLS 1.2 (a task less per listener)
            probes.append(asyncio.create_task(_probe_versions(opener, ctx, later)))
        if share and result.error is None and ctx.tls_for_nla is not None:
            ctx.kept[HANDED_TLS] = (reader, writer, selected)
            ctx.tls_for_nla.set_result(True)
        else:
            await close_writer(writer, _close(ctx, "tls: close"))
        fallback = await _tls_fallback(ctx, request) if result.error else None
        facts = TlsFacts(
            request=request.label,
            selected=protocol_name(selected),
            version=result.version,
            cipher=result.cipher,
            cipher_bits=result.cipher_bits,
            error=result.error,
            chain=describe_chain(result.chain_der),
            server_name=ctx.target.host,
            fallback=fallback,
            alert=result.alert,
        )
        # the certificate's names are looked up while the version probes run
        lookups = await _certificate_name_lookups(ctx, facts)
        versions = dict(seen)
        for task in probes:  # a probe's own answer, where there is one, is what is reported
            versions.update(await task)
    except BaseException:
        for task in probes:
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
        raise  # a spare still kept is closed by check with the rest
    await _give_back_all(ctx, tuple(spares))
    ctx.observation.tls = replace(facts, name_lookups=lookups)
    ctx.observation.tls_versions = TlsVersionsFacts({v: versions[v] for v in live_tls.VERSIONS})
    return share and result.error is None


async def _certificate_name_lookups(ctx: StageContext, facts: TlsFacts) -> tuple[NameLookup, ...]:
    """When the judged certificate does not name the target: its DNS names (SAN, else the CN),
    at most a few, resolved within the target's deadline (--resolve overrides first), so the
    judge can tell whether they point at the address probed."""
    leaf = leaf_of(judged_chain(facts)[1])
    mode = ctx.options.name_lookup or lookup_mode()
    if leaf is None or mode == "off":
        return ()
    match, _why, _is_ip = match_name(ctx.target.host, leaf.san_dns, leaf.san_ip, leaf.subject_cn)
    names = lookup_names(leaf.san_dns or ((leaf.subject_cn,) if leaf.subject_cn else ()))
    if match is not False or not names:
        return ()
    limit = ctx.deadline.limit(ctx.options.timeouts.connect)
    return await lookup_all(names, limit, ctx.options.resolve, mode=mode)


async def _tls_fallback(ctx: StageContext, request: Request) -> TlsFallbackFacts:
    """What a server the local OpenSSL could not talk to offers to a hand-built TLS 1.0 hello
    (RC4/3DES/AES-CBC suites), on a fresh connection."""
    try:
        reader, writer, _sel = await _open_fresh(ctx, request)
    except StageSkipped as exc:
        return TlsFallbackFacts(error=str(exc))
    try:
        result = await live_tls.legacy_hello(
            reader, writer, timeout=_step(ctx, "tls: TLS 1.0 fallback hello"),
            server_name=_hostname(ctx),
        )  # fmt: skip
    finally:
        await close_writer(writer, _close(ctx, "tls: fallback close"))
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


async def _probe_versions(
    opener: Callable[[], Awaitable[Streams]], ctx: StageContext, names: tuple[str, ...]
) -> dict[str, str]:
    """The TLS versions ``names``, pinned one at a time, a connection of its own each (from
    ``opener``), all at once."""

    async def open_stream() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer, _sel = await opener()
        return reader, writer

    results = await asyncio.gather(
        *(
            live_tls.probe_version(
                open_stream, n, timeout=ctx.options.timeouts.read, deadline=ctx.deadline
            )
            for n in names
        )
    )
    return dict(zip(names, results, strict=True))


async def nla_stage(ctx: StageContext) -> None:
    order = ("SSL|HYBRID", "SSL|HYBRID|HYBRID_EX")
    request = await _request_selecting(ctx, NLA_PROTOCOLS, order)
    if request is None:
        return
    handed = None
    if ctx.tls_for_nla is not None and await asyncio.shield(ctx.tls_for_nla):
        handed = ctx.kept.pop(HANDED_TLS, None)
    if handed is not None:  # the TLS stage's handshake, on this same row (request)
        reader, writer, selected = handed
        tls_error = None
    else:
        reader, writer, selected, tls = await _open_tls(ctx, request, "nla: TLS handshake")
        tls_error = tls.error
    try:
        if tls_error:
            ctx.observation.nla = NlaFacts(
                protocol_name(selected), None, None, f"TLS before CredSSP failed: {tls_error}"
            )
            return
        result = await live_nla.nla_probe(
            reader, writer, timeout=_step(ctx, "nla: CredSSP round trip")
        )
    finally:
        await close_writer(writer, _close(ctx, "nla: close"))
    ctx.observation.nla = NlaFacts(
        selected=protocol_name(selected),
        challenge=result.challenge,
        tsrequest_version=result.tsrequest_version,
        error=result.error,
        error_code=result.error_code,
        observed_at=datetime.now(UTC),
    )


async def mcs_stage(ctx: StageContext) -> None:
    rdp = await ctx.row("RDP")
    if (rdp is not None and _selected(rdp) == 0) or _is_legacy(rdp):  # legacy: no negotiation
        await _mcs_probes(ctx, next(r for r in MATRIX if r.label == "RDP"))
    elif _is_legacy(await ctx.row("no negotiation")):
        await _mcs_probes(ctx, next(r for r in MATRIX if r.label == "no negotiation"))
    else:
        await _give_back_all(ctx, SPARES["mcs"])


async def _give_back(ctx: StageContext, label: str) -> None:
    """Close the connection of row ``label``, kept for a stage that went on from another row,
    as soon as its answer is in."""
    await ctx.row(label)
    unused = ctx.kept.pop(label, None)
    if unused is not None:
        await close_writer(unused[1], _close(ctx))


async def _mcs_probes(ctx: StageContext, request: Request) -> None:
    """The MCS Connect-Initial with every method, and each method alone, for ``request``
    (on the spare rows' connections first); the spares no probe took are closed."""
    spares = [label for label in SPARES["mcs"] if label != request.label]
    await _mcs_answers(ctx, request, _spare_or_fresh(ctx, request, spares))
    await _give_back_all(ctx, tuple(spares))  # after a failure: check closes what is kept


async def _mcs_answers(
    ctx: StageContext, request: Request, open_stream: Callable[[], Awaitable[Streams]]
) -> None:
    """The answers of ``_mcs_probes``, the methods alone from ``open_stream``."""
    # the methods offered alone need only the request: asked while the first probe runs (but for
    # the one it is expected to choose, rdprobe.live.mcs.EXPECTED_METHOD) where the server speaks
    # Standard RDP Security to a client that negotiates; on the path of a client without
    # negotiation, beside a server that refused RDP to one that negotiates (xrdp set to tls, say),
    # the first answer is often already a refusal, so they wait for it
    early: tuple[str, ...] = ()
    if request.label == "RDP":
        early = tuple(n for n in live_mcs.MATRIX_METHODS if n != live_mcs.EXPECTED_METHOD)
    timeout = _step(ctx, "mcs: encryption matrix")
    matrix = asyncio.create_task(
        live_mcs.encryption_matrix(open_stream, timeout=timeout, names=early)
    )
    try:
        reader, writer, selected = await _open(ctx, request)
        first = await live_mcs.mcs_probe(
            reader, writer, selected_protocol=selected, timeout=_step(ctx, "mcs: Connect-Initial")
        )
    except BaseException:
        matrix.cancel()
        await asyncio.gather(matrix, return_exceptions=True)
        raise
    methods = {}
    if first.server_data is not None:
        methods = await matrix
        chosen = live_mcs.answer_alone(first)
        if chosen is not None and chosen.offered in live_mcs.MATRIX_METHODS:
            methods.setdefault(chosen.offered, chosen)  # a probe's own answer comes first
        rest = tuple(n for n in live_mcs.MATRIX_METHODS if n not in methods)
        if rest:
            methods |= await live_mcs.encryption_matrix(
                open_stream, timeout=_step(ctx, "mcs: encryption matrix"), names=rest
            )
        methods = {n: methods[n] for n in live_mcs.MATRIX_METHODS}
    else:  # without a first answer the methods mean nothing: not waited for, not reported
        matrix.cancel()
        await asyncio.gather(matrix, return_exceptions=True)
    ctx.observation.mcs = McsFacts(request=request.label, **vars(first), methods=methods)


async def session_stage(ctx: StageContext) -> None:
    """Walk to the logon screen on the path a client would take (rdprobe.live.session, loaded
    only for a walk: a sweep at depth full starts without its modules)."""
    if not OPTIONAL["session"](ctx.options):
        return
    from rdprobe.live.session_stage import SESSION_ROWS, choose_request, walk_target

    attempts: list[Attempt] = []
    for label in SESSION_ROWS:  # in order of preference: the first that will do, once it is in
        row = await ctx.row(label)
        if row is not None:
            attempts.append(row)
        if choose_request(attempts) is not None:
            break
    facts = await walk_target(
        ctx.address, ctx.target.port, attempts, cookie=ctx.options.cookie,
        timeouts=ctx.options.timeouts, deadline=ctx.deadline, server_hostname=_hostname(ctx),
        opening=ctx.host_limit,
    )  # fmt: skip
    if facts is not None:
        ctx.observation.session = facts


async def udp_stage(ctx: StageContext) -> None:
    if not OPTIONAL["udp"](ctx.options):
        return
    _require_time(ctx)
    result = await live_udp.udp_probe(
        ctx.address, ctx.target.port, timeout=_step(ctx, "udp: SYN"), retries=2
    )
    ctx.observation.udp = result


async def _auth_stage(ctx: StageContext) -> None:
    """check --user only (rdprobe.live.auth_stage, loaded only then)."""
    if not OPTIONAL["auth"](ctx.options):
        return
    from rdprobe.live.auth_stage import auth_stage

    await auth_stage(ctx)


Stage = Callable[[StageContext], Awaitable[None]]
#: The stages that run only when an option asks for them: the walk to the logon screen (check at
#: depth full; sweep only with --depth session), --udp, --user. check starts no task (and no
#: timer) for one its options leave out: three tasks less per listener of a depth-full sweep.
OPTIONAL: dict[str, Callable[[CheckOptions], bool]] = {
    "session": lambda options: options.session,
    "udp": lambda options: options.udp,
    "auth": lambda options: options.credentials is not None,
}
#: (name, stage, needs an RDP answer): run in this order; each sets observation.<name>
#: (the TLS stage also sets tls_versions). A new stage is one more line here.
STAGES: tuple[tuple[str, Stage, bool], ...] = (
    ("tls", tls_stage, True),
    ("nla", nla_stage, True),
    ("mcs", mcs_stage, True),
    ("session", session_stage, True),
    ("udp", udp_stage, False),
    ("auth", _auth_stage, True),
)
