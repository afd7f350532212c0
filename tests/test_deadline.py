"""The target deadline (4 x --timeout): steps take min(limit, time left), a stage that ignores it
is stopped just after it, and the reason names the step it ran out in."""

from __future__ import annotations

import asyncio
import time

from rdprobe.analysis.facts import StageNote
from rdprobe.live import stages as live_stages
from rdprobe.live.check import DEADLINE_GRACE_S, CheckOptions, check_target
from rdprobe.live.target import parse_target
from rdprobe.live.timing import Deadline
from rig.ports import free_port, loopback_address


def test_limit_is_cut_by_the_deadline_and_remembers_the_step():
    deadline = Deadline(0.5)
    assert deadline.limit(0.1, "a: short") == 0.1 and deadline.ran_out_in is None
    assert 0.4 < deadline.limit(5.0, "b: long") <= 0.5
    assert deadline.ran_out_in == "b: long"
    assert "0.5 s ran out during b: long" in deadline.reason()


async def test_a_stage_that_ignores_the_deadline_is_stopped_just_after_it(monkeypatch):
    async def hang(ctx) -> None:  # stands in for the UDP stage, which runs without RDP
        await asyncio.sleep(ctx.deadline.limit(3600, "udp: sleeping") + 3600)

    monkeypatch.setattr(live_stages, "STAGES", (("udp", hang, False),))
    address = loopback_address()
    opts = CheckOptions.with_timeout(0.25, udp=True)
    start = time.monotonic()
    (report,) = await check_target(parse_target(f"{address}:{free_port(address)}"), opts)
    wall = time.monotonic() - start
    note = report.observation.udp
    assert isinstance(note, StageNote) and "ran out during udp: sleeping" in note.skipped
    assert report.observation.config.deadline in note.skipped
    assert wall / (1.0 + DEADLINE_GRACE_S) < 1.2, wall
