"""`rdprobe check`: probe one target end to end and classify what was seen.

Resolution, the X.224 negotiation matrix, the follow-ups that name a wrong service, repeats for
intermittency, and the later stages (TLS, NLA, MCS, UDP) of ``rdprobe.live.stages.STAGES``.

Nothing waits for what it does not need: the rest of the matrix starts when the primary
request's reply arrives (its linger goes on alongside), each later stage when the rows it depends
on have answered, on the very connection of its preferred row when that row's confirm allows it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rdprobe.analysis.classify import Report, classify, load_judges
from rdprobe.analysis.facts import StageNote, TlsFacts
from rdprobe.analysis.fingerprint import identify
from rdprobe.analysis.observations import (
    Attempt,
    RepeatStats,
    ReplyKind,
    ServiceGuess,
    TargetObservation,
    TcpOutcome,
)
from rdprobe.analysis.trust import TrustRoots
from rdprobe.defaults import DEFAULT_CONCURRENCY, DEFAULT_COOKIE, DEFAULT_PER_HOST  # noqa: F401
from rdprobe.live.credentials import Credentials
from rdprobe.live.first_connect import FirstConnect, start_observation
from rdprobe.live.matrix import TCP_ONLY
from rdprobe.live.negotiate import MATRIX, PRIMARY, Request, attempt, connect
from rdprobe.live.target import Target, parse_target
from rdprobe.live.timing import CLOSE_LIMIT_S, DEFAULT_TIMEOUT_S, Deadline, Timeouts, close_writer
from rdprobe.protocol.errors import internal_error, one_line
from rdprobe.protocol.x224 import ConnectionConfirm, NegotiationResponse

if TYPE_CHECKING:  # the stages (TLS, NLA, MCS: ssl, cryptography) load only when a port answers
    from rdprobe.live.stages import Stage, StageContext

load_judges()  # before any connection is open (a sweep may use every file descriptor)

#: How long to watch the primary connection after its confirm for a server that drops it.
AFTER_CONFIRM_LINGER_S = 0.2
#: A stage still running this long after the target's deadline is stopped (every step already
#: takes min(its limit, time left): this only catches one that does not).
DEADLINE_GRACE_S = 0.25


@dataclass(frozen=True)
class CheckOptions:
    timeouts: Timeouts = field(default_factory=Timeouts)
    retries: int = 0
    cookie: str | None = DEFAULT_COOKIE
    per_host: int = DEFAULT_PER_HOST
    repeat: int = 1
    all_addresses: bool = False
    depth: str = "full"  #: "tcp", "x224" or "full"
    #: at depth full, walk to the logon screen too (a logon-screen session on the server);
    #: `sweep` sets it only with --depth session
    session: bool = True
    udp: bool = False
    ca_file: str | None = None
    #: later stages to run at depth full (None: all of them)
    stages: frozenset[str] | None = None
    #: NAME -> addresses, like curl's --resolve: probe given servers under the name users type
    resolve: dict[str, list[str]] = field(default_factory=dict)
    #: how a mismatched certificate's names are resolved: "dns", "local" (only the overrides
    #: and localhost) or "off"; None: RDPROBE_NAME_LOOKUP, else "dns" (rdprobe.live.names)
    name_lookup: str | None = None
    #: check --user: the one account to log on with (its repr hides the password)
    credentials: Credentials | None = None
    #: allow a logon that carries the password in the Client Info PDU (no NLA), over TLS only
    logon_without_nla: bool = False

    @classmethod
    def with_timeout(cls, timeout: float = DEFAULT_TIMEOUT_S, **kw: object) -> CheckOptions:
        return cls(timeouts=Timeouts.from_timeout(timeout), **kw)  # type: ignore[arg-type]


async def resolve(
    target: Target, timeout: float, overrides: dict[str, list[str]] | None = None
) -> tuple[list[str], str | None]:
    """Addresses of the target (in resolver order, de-duplicated), or the DNS error."""
    if target.is_literal:
        return [target.host], None
    if overrides and target.host in overrides:
        return list(overrides[target.host]), None
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError:
        return [], f"no answer from the resolver within {timeout:.1f} s"
    except (socket.gaierror, UnicodeError, OSError) as exc:
        return [], one_line(exc)
    return list(dict.fromkeys(str(info[4][0]) for info in infos)), None


def _permissive_tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def direct_tls(
    address: str, port: int, opts: CheckOptions, deadline: Deadline
) -> ServiceGuess | None:
    """Speak TLS straight away (no X.224): does the port hold a TLS (HTTPS...) service?"""
    outcome, _err, _ms, streams = await connect(
        address, port, opts.timeouts, deadline, ssl_context=_permissive_tls()
    )
    if outcome is not TcpOutcome.CONNECTED or streams is None:
        return None
    reader, writer = streams
    try:
        obj = writer.get_extra_info("ssl_object")
        version = obj.version() if obj else None
        cipher = obj.cipher()[0] if obj and obj.cipher() else None
        writer.write(b"HEAD / HTTP/1.0\r\nHost: rdprobe\r\n\r\n")
        try:
            data = await asyncio.wait_for(reader.read(2048), deadline.limit(1.0))
        except (TimeoutError, OSError, ssl.SSLError):
            data = b""
        detail = f"{version}, {cipher}"
        guess = identify(data) if data else None
        if guess is not None and guess.name == "HTTP":
            return ServiceGuess("HTTPS", f"{guess.detail}; {detail}", guess.preview)
        return ServiceGuess("TLS", detail, guess.preview if guess else "")
    finally:
        await close_writer(writer, deadline.limit(CLOSE_LIMIT_S))


async def tcp_only(
    address: str,
    port: int,
    opts: CheckOptions,
    deadline: Deadline,
    first_connect: FirstConnect | None = None,
) -> Attempt:
    """Depth tcp: connect and close, nothing sent."""
    outcome, error, ms, streams = await connect(
        address, port, opts.timeouts, deadline, retries=opts.retries, first_connect=first_connect
    )
    if streams is not None:
        await close_writer(streams[1])
    return Attempt(TCP_ONLY.label, TCP_ONLY.requested, outcome, error, ms)


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) == 1:
        v = values[0]
        return {"p50": v, "p90": v, "p99": v, "max": v}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98], "max": max(values)}


def _attempt_outcome(a: Attempt) -> str:
    if a.tcp is not TcpOutcome.CONNECTED:
        return str(a.tcp)
    if a.reply_kind is ReplyKind.TPDU:
        return "rdp"
    return str(a.reply_kind)


async def _repeat(address: str, port: int, opts: CheckOptions) -> RepeatStats:
    """The primary request, N times in a row, each with its own deadline."""
    results: list[Attempt] = []
    for _ in range(opts.repeat):
        a, _streams = await attempt(
            address,
            port,
            PRIMARY,
            cookie=opts.cookie,
            timeouts=opts.timeouts,
            deadline=Deadline(opts.timeouts.connect + opts.timeouts.read),
            retries=opts.retries,
        )
        results.append(a)
    return RepeatStats(
        tries=len(results),
        outcomes=dict(Counter(_attempt_outcome(a) for a in results)),
        connect_ms=_percentiles(
            [
                a.connect_ms
                for a in results
                if a.connect_ms is not None and a.tcp is TcpOutcome.CONNECTED
            ]
        ),
        first_byte_ms=_percentiles(
            [a.first_byte_ms for a in results if a.first_byte_ms is not None]
        ),
    )


async def probe_address(
    target: Target,
    address: str,
    opts: CheckOptions,
    *,
    now: Callable[[], datetime] | None = None,
    first_connect: FirstConnect | None = None,
) -> Report:
    """Everything for one address of a target; never raises for network behaviour.
    ``first_connect``: the primary request's connect, already made (rdprobe.live.first_connect);
    the target's probe (its deadline, the observation's ``started``) began with it."""
    clock = now or (lambda: datetime.now(UTC))
    began = first_connect.at if first_connect else clock()
    obs = start_observation(target, address, opts.timeouts.connect, opts.cookie, began)
    deadline = Deadline(opts.timeouts.total, first_connect.started if first_connect else None)
    host_limit = asyncio.Semaphore(max(1, opts.per_host))
    if opts.depth == "tcp":
        obs.attempts.append(await tcp_only(address, target.port, opts, deadline, first_connect))
        return classify(obs, clock())
    loop = asyncio.get_running_loop()
    rows: dict[str, asyncio.Future[Attempt]] = {}
    kept: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter, int]] = {}
    keep: dict[str, Callable[[ConnectionConfirm], bool]] = {}
    tasks: list[asyncio.Task[Any]] = []
    primary: asyncio.Future[Attempt] = loop.create_future()
    answered = False

    async def run(
        req: Request,
        linger: float = 0.0,
        on_reply: Callable[[ReplyKind], None] | None = None,
        made: FirstConnect | None = None,
    ) -> Attempt:
        a, streams = await attempt(
            address,
            target.port,
            req,
            cookie=opts.cookie,
            timeouts=opts.timeouts,
            deadline=deadline,
            retries=opts.retries,
            linger=linger,
            keep_open=keep.get(req.label, False),
            on_reply=on_reply,
            first_connect=made,
            opening=host_limit,
        )
        if streams is not None and isinstance(a.tpdu, ConnectionConfirm):  # kept for a stage
            neg = a.tpdu.negotiation
            selected = neg.selected if isinstance(neg, NegotiationResponse) else 0
            kept[req.label] = (streams[0], streams[1], selected)
        return a

    def start_stages() -> None:
        from rdprobe.live.stages import OPTIONAL, STAGES, StageContext

        ctx = StageContext(target, address, obs, opts, deadline, host_limit, rows, kept)
        for name, stage, needs_rdp in STAGES:
            if (
                (needs_rdp and not answered)
                or (opts.stages is not None and name not in opts.stages)
                or (name in OPTIONAL and not OPTIONAL[name](opts))
            ):
                continue
            tasks.append(asyncio.create_task(_run_stage(name, stage, ctx)))

    def start_rest(kind: ReplyKind) -> None:
        """The primary request's reply is in: the rest of the matrix and the stages go now."""
        nonlocal answered
        if kind is not ReplyKind.TPDU:
            return
        answered = True
        if opts.depth == "full":
            keep.update(_keepers(opts))
        rows[PRIMARY.label] = primary
        for r in MATRIX:
            if r is not PRIMARY:
                rows[r.label] = task = asyncio.create_task(run(r))
                tasks.append(task)
        if opts.depth == "full":
            start_stages()

    try:
        first = await run(PRIMARY, AFTER_CONFIRM_LINGER_S, start_rest, first_connect)
        primary.set_result(first)
        obs.attempts.append(first)
        if answered:
            obs.attempts.extend([await rows[r.label] for r in MATRIX if r is not PRIMARY])
        else:
            if opts.depth == "full" and opts.udp:
                start_stages()  # the stages that need no RDP answer
            if first.tcp is TcpOutcome.CONNECTED and first.reply_kind in (
                ReplyKind.NOT_TPKT,
                ReplyKind.CLOSED,
                ReplyKind.RESET,
            ):
                obs.direct_tls = await direct_tls(address, target.port, opts, deadline)
        for task in list(tasks):
            await task
    finally:
        if not primary.done():
            primary.cancel()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for _reader, writer, _sel in kept.values():  # rows no stage took
            await close_writer(writer, deadline.limit(CLOSE_LIMIT_S))
        kept.clear()
    if opts.repeat > 1:
        obs.repeat = await _repeat(address, target.port, opts)
    return classify(obs, clock(), _roots(obs, opts))


def _keepers(opts: CheckOptions) -> dict[str, Callable[[ConnectionConfirm], bool]]:
    """Matrix rows whose connection to keep open after a confirm that passes the test: the
    preferred row of each stage that will run."""
    from rdprobe.live.stages import FIRST_CHOICE

    return {
        label: test
        for label, (stage, test) in FIRST_CHOICE.items()
        if opts.stages is None or stage in opts.stages
    }


async def _run_stage(name: str, stage: Stage, ctx: StageContext) -> None:
    from rdprobe.live.stages import StageSkipped

    obs, deadline = ctx.observation, ctx.deadline
    cap = asyncio.timeout(deadline.remaining() + DEADLINE_GRACE_S)
    try:
        async with cap:
            await stage(ctx)
    except StageSkipped as exc:
        setattr(obs, name, StageNote(skipped=str(exc)))
    except Exception as exc:  # a stage bug must not lose the target's result
        if isinstance(exc, TimeoutError) and cap.expired():  # the backstop fired
            if getattr(obs, name) is None:
                setattr(obs, name, StageNote(skipped=f"stopped: {deadline.reason()}"))
        else:
            # the auth stage handles a password: no exception text leaves it
            text = f"internal error: {type(exc).__name__}" if name == "auth" else None
            setattr(obs, name, StageNote(error=text or internal_error(exc)))
    if deadline.expired and obs.config.deadline is None:
        obs.config = replace(obs.config, deadline=deadline.reason())


def _roots(obs: TargetObservation, opts: CheckOptions) -> TrustRoots | None:
    """The trust roots (--ca-file, else the system store), loaded only when there is a chain."""
    if not isinstance(obs.tls, TlsFacts):
        return None
    from rdprobe.trust_store import load_trust_roots  # cryptography: only with a chain

    return load_trust_roots(opts.ca_file)


async def check_target(
    target: Target, opts: CheckOptions, *, now: Callable[[], datetime] | None = None
) -> list[Report]:
    """One report per probed address (the first, or all with all_addresses)."""
    clock = now or (lambda: datetime.now(UTC))
    addresses, dns_error = await resolve(target, opts.timeouts.connect, opts.resolve)
    if dns_error is not None or not addresses:
        obs = TargetObservation(
            target.host, target.port, None, clock(), dns_error=dns_error or "no address"
        )
        return [classify(obs, clock())]
    chosen = addresses if opts.all_addresses else addresses[:1]
    reports = await asyncio.gather(*(probe_address(target, a, opts, now=now) for a in chosen))
    return list(reports)


async def check(target: str, **options: object) -> list[Report]:
    """Library entry point: ``await rdprobe.check("host:3389")``."""
    opts = CheckOptions(**options)  # type: ignore[arg-type]
    return await check_target(parse_target(target), opts)
