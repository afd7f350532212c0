"""What a check waits for, and for how long it holds a host's slot: a connection counts against
``--per-host`` only until the server's reply (negotiate.Opening); the session walk starts once
the row it prefers is in; the MCS methods alone wait for the first answer on the path without
negotiation; a row kept for a stage that went on from another row is closed once it is in."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.live import mcs as live_mcs
from rdprobe.live import session_stage, stages
from rdprobe.live.check import CheckOptions
from rdprobe.live.matrix import MATRIX
from rdprobe.live.negotiate import attempt
from rdprobe.live.target import Target
from rdprobe.live.timing import Deadline, Timeouts
from rdprobe.protocol import x224
from rdprobe.protocol.reply_kind import ReplyKind
from rig.ports import loopback_address

TIMEOUTS = Timeouts(connect=2.0, read=2.0, total=10.0)
SSL = MATRIX[2]
assert SSL.label == "SSL"


def confirm(neg: x224.NegotiationResponse | x224.NegotiationFailure | None) -> bytes:
    return x224.build_confirm(neg)


def row(label: str, neg: x224.NegotiationResponse | x224.NegotiationFailure | None) -> Attempt:
    data = confirm(neg)
    return Attempt(
        label, None, TcpOutcome.CONNECTED, None, 1.0, 1.0, ReplyKind.TPDU, data,
        x224.parse_confirm(data),
    )  # fmt: skip


async def test_a_host_slot_is_held_until_the_reply_and_not_while_the_connection_lingers():
    replied = asyncio.Event()

    async def slow_server(reader, writer):
        await reader.read(100)
        await asyncio.sleep(0.3)
        writer.write(confirm(x224.NegotiationResponse(selected=1)))
        await writer.drain()
        replied.set()
        await asyncio.sleep(1.0)  # open while the client lingers
        writer.close()

    server = await asyncio.start_server(slow_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    slot = asyncio.Semaphore(1)
    try:
        task = asyncio.create_task(
            attempt(
                "127.0.0.1", port, SSL, cookie=None, timeouts=TIMEOUTS,
                deadline=Deadline(10.0), linger=0.6, opening=slot,
            )
        )  # fmt: skip
        await asyncio.sleep(0.15)
        assert slot.locked()  # connected, the reply not in: the slot is the connection's
        await replied.wait()
        await asyncio.sleep(0.1)
        assert not task.done() and not slot.locked()  # lingering: the slot is free again
        a, streams = await task
        assert isinstance(a.tpdu, x224.ConnectionConfirm) and streams is None
        assert not slot.locked()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_connect_gives_its_slot_back():
    slot = asyncio.Semaphore(1)
    a, _streams = await attempt(
        loopback_address(), 3389, SSL, cookie=None, timeouts=TIMEOUTS,
        deadline=Deadline(5.0), opening=slot,
    )  # fmt: skip
    assert a.tcp is TcpOutcome.REFUSED and not slot.locked()


async def _context(rows: dict[str, Attempt | None]) -> stages.StageContext:
    """A stage context whose matrix rows are the given ones; a row given as None never ends."""
    loop = asyncio.get_running_loop()
    target = Target("127.0.0.1", 3389, True)
    obs = TargetObservation("127.0.0.1", 3389, "127.0.0.1", datetime.now(UTC))
    ctx = stages.StageContext(
        target, "127.0.0.1", obs,
        CheckOptions(timeouts=TIMEOUTS, session=True), Deadline(10.0), asyncio.Semaphore(3),
    )  # fmt: skip
    for label, a in rows.items():
        fut = ctx.rows[label] = loop.create_future()
        if a is not None:
            fut.set_result(a)
    return ctx


async def test_the_session_walk_starts_once_its_preferred_row_is_in(monkeypatch):
    walked: list[list[str]] = []

    async def walk_target(address, port, attempts, **kw):
        walked.append([a.label for a in attempts])

    monkeypatch.setattr(session_stage, "walk_target", walk_target)  # loaded by the walk itself
    ssl = row("SSL", x224.NegotiationResponse(selected=int(x224.Protocol.SSL)))
    ctx = await _context({"SSL": ssl, "RDP": None, "no negotiation": None})  # those never end
    await asyncio.wait_for(stages.session_stage(ctx), 2.0)
    assert walked == [["SSL"]]
    # an SSL row that did not select SSL: the walk waits for the next row it prefers
    refused = row(
        "SSL", x224.NegotiationFailure(code=int(x224.FailureCode.SSL_NOT_ALLOWED_BY_SERVER))
    )
    ctx = await _context({"SSL": refused, "RDP": None, "no negotiation": None})
    waiting = asyncio.create_task(stages.session_stage(ctx))
    await asyncio.sleep(0.2)
    assert not waiting.done() and walked == [["SSL"]]
    ctx.rows["RDP"].set_result(row("RDP", x224.NegotiationResponse(selected=0)))
    await asyncio.wait_for(waiting, 2.0)
    assert walked[-1] == ["SSL", "RDP"]


async def test_mcs_methods_alone_wait_for_the_first_answer_without_negotiation(monkeypatch):
    """RDP refused to a client that negotiates, a confirm to one that does not (xrdp set to
    tls): the first Connect-Initial gets an ultimatum, and no method is offered alone."""
    offered: list[tuple[str, ...]] = []

    async def encryption_matrix(open_stream, *, timeout, names):
        offered.append(names)
        return {}

    async def mcs_probe(reader, writer, *, selected_protocol, timeout):
        await asyncio.sleep(0.05)  # what was started beside it gets to run
        return live_mcs.McsResult(selected_protocol, 0, error="ultimatum")

    async def _open(ctx, request):
        return None, None, 0

    monkeypatch.setattr(live_mcs, "encryption_matrix", encryption_matrix)
    monkeypatch.setattr(live_mcs, "mcs_probe", mcs_probe)
    monkeypatch.setattr(stages, "_open", _open)
    required = x224.NegotiationFailure(code=int(x224.FailureCode.SSL_REQUIRED_BY_SERVER))
    ctx = await _context(
        {"RDP": row("RDP", required), "no negotiation": row("no negotiation", None)}
    )
    await stages.mcs_stage(ctx)
    assert ctx.observation.mcs is not None and ctx.observation.mcs.request == "no negotiation"
    assert all(names == () for names in offered), offered
    # where the server selects RDP, the methods are asked while the first probe runs
    offered.clear()
    rdp = row("RDP", x224.NegotiationResponse(selected=0))
    ctx = await _context({"RDP": rdp, "no negotiation": row("no negotiation", None)})
    await stages.mcs_stage(ctx)
    assert offered and set(offered[0]) == set(live_mcs.MATRIX_METHODS) - {live_mcs.EXPECTED_METHOD}


async def test_a_row_kept_for_mcs_but_not_used_is_closed_once_it_is_in(monkeypatch):
    async def mcs_probe(reader, writer, *, selected_protocol, timeout):
        return live_mcs.McsResult(selected_protocol, 0, error="ultimatum")

    async def _open(ctx, request):
        return None, None, 0

    monkeypatch.setattr(live_mcs, "mcs_probe", mcs_probe)
    monkeypatch.setattr(stages, "_open", _open)
    closed: list[bool] = []

    class Writer:
        def close(self) -> None:
            closed.append(True)

        def is_closing(self) -> bool:
            return bool(closed)

        async def wait_closed(self) -> None:
            return None

        @property
        def transport(self) -> Transport:
            return Transport()

    class Transport:  # a plain transport the kernel took every byte of (timing._sent)
        def get_write_buffer_size(self) -> int:
            return 0

        def is_closing(self) -> bool:
            return bool(closed)

        def get_extra_info(self, name: str) -> None:
            return None

    rdp = row("RDP", x224.NegotiationResponse(selected=0))
    ctx = await _context({"RDP": rdp, "no negotiation": None})
    stage = asyncio.create_task(stages.mcs_stage(ctx))
    await asyncio.sleep(0.1)
    ctx.kept["no negotiation"] = (None, Writer(), 0)  # type: ignore[assignment]
    ctx.rows["no negotiation"].set_result(row("no negotiation", None))
    await asyncio.wait_for(stage, 2.0)
    assert closed and "no negotiation" not in ctx.kept


async def test_a_spare_row_serves_one_probe_once_it_is_in_then_fresh_connections(monkeypatch):
    """The openers of probes that each need a connection of their own (stages.SPARES): the next
    spare row's kept connection, taken once and only after that row's answer is in; a spare row
    that kept nothing (its confirm did not do) and the probes after the spares get fresh ones."""
    fresh: list[str] = []

    async def _open_fresh(ctx, request):
        fresh.append(request.label)
        return None, f"fresh {len(fresh)}", 0

    monkeypatch.setattr(stages, "_open_fresh", _open_fresh)
    ctx = await _context({"RDSTLS": None, "no negotiation": row("no negotiation", None)})
    spares = ["RDSTLS", "no negotiation"]
    opener = stages._spare_or_fresh(ctx, MATRIX[1], spares)
    first = asyncio.create_task(opener())
    second = asyncio.create_task(opener())
    await asyncio.sleep(0.05)
    assert spares == [] and not first.done()  # RDSTLS is not in yet
    assert second.done() and second.result()[1] == "fresh 1"  # its row kept nothing
    ctx.kept["RDSTLS"] = (None, "kept", 0)  # type: ignore[assignment]
    ctx.rows["RDSTLS"].set_result(row("RDSTLS", x224.NegotiationResponse(selected=0)))
    assert (await asyncio.wait_for(first, 2.0))[1] == "kept" and "RDSTLS" not in ctx.kept
    assert (await opener())[1] == "fresh 2" and fresh == ["RDP", "RDP"]
