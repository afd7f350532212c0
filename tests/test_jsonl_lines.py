"""``report_line``: the same bytes as ``dumps(report_dict(report))`` for every report, whether the
row of a no-listener target is filled into the encoded row of its shape or built in full."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from rdprobe.analysis.classify import classify
from rdprobe.analysis.facts import RunConfig
from rdprobe.analysis.observations import Attempt, TargetObservation, TcpOutcome
from rdprobe.live.check import CheckOptions
from rdprobe.live.timing import Timeouts
from rdprobe.render import jsonl
from rdprobe.render.jsonl import dumps, report_dict, report_line
from rdprobe.sweep.runner import SweepOptions, run_sweep
from rdprobe.sweep.targets import TargetSet, parse_spec
from rig.ports import loopback_address

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, UTC)
LABEL = "SSL|HYBRID|HYBRID_EX"


@pytest.fixture(autouse=True)
def fresh_shapes(monkeypatch):
    monkeypatch.setattr(jsonl, "LINES", jsonl._Lines())
    return jsonl.LINES


def _report(host, tcp, error, ms, *, port=3389, started=T0, config=None, address=None):
    obs = TargetObservation(host, port, host if address is None else address, started)
    obs.config = config or RunConfig(timeout_s=3, cookie="rdprobe")
    obs.attempts.append(Attempt(LABEL, 11, tcp, error, ms))
    return classify(obs, started)


def _refused(host, port=3389):
    return f"[Errno 111] Connect call failed ('{host}', {port})"


def test_real_refused_sweep_rows_are_filled_and_identical(fresh_shapes):
    host = loopback_address()
    base = host.rsplit(".", 1)[0]
    targets = TargetSet([parse_spec(f"{base}.0/26")], [3389, 1, 3390])
    reports = []
    opts = SweepOptions(
        check=CheckOptions(timeouts=Timeouts.from_timeout(2), depth="x224", session=False),
        concurrency=32,
    )
    asyncio.run(run_sweep(targets, opts, lambda _row: None, on_report=reports.append))
    assert len(reports) == 64 * 3 and {r.outcome for r in reports} == {"refused"}
    for r in reports:
        assert report_line(r) == dumps(report_dict(r))
    # one shape per port (a finding names it), each filled, none given up
    assert len(fresh_shapes._shapes) == 3
    assert all(t is not None for t in fresh_shapes._shapes.values())


@pytest.mark.parametrize(
    ("host", "tcp", "error", "ms"),
    [
        ("10.0.0.1", TcpOutcome.REFUSED, _refused("10.0.0.1"), 0.5),
        ("0.0.0.1", TcpOutcome.REFUSED, _refused("0.0.0.1"), 12.0),  # a suffix of 10.0.0.1
        ("255.255.255.255", TcpOutcome.REFUSED, _refused("255.255.255.255"), 1e-05),
        ("192.0.2.213", TcpOutcome.REFUSED, _refused("192.0.2.213"), 3.25),  # the stand-in
        ("10.9.9.9", TcpOutcome.REFUSED, _refused("192.0.2.213"), 3.25),  # it, in the error
        ("10.1.2.3", TcpOutcome.TIMEOUT, "no answer within 3.0 s", None),
        ("10.1.2.4", TcpOutcome.HOST_UNREACHABLE, "[Errno 113] No route to host", 0.1),
        ("10.1.2.5", TcpOutcome.ERROR, 'odd "quoted" {braces} \\ and ünïcode', 2.0),
        ("10.1.2.6", TcpOutcome.REFUSED, None, None),
        ("10.1.2.7", TcpOutcome.REFUSED, _refused("10.1.2.7"), float("nan")),
        ("::1", TcpOutcome.REFUSED, _refused("::1"), 0.5),  # IPv6: built in full
        ("host.example", TcpOutcome.REFUSED, _refused("127.0.0.1"), 0.5),  # a name
    ],
)
def test_every_shape_gives_the_full_encoding(host, tcp, error, ms):
    address = "127.0.0.1" if host == "host.example" else None
    for i in range(3):  # the first makes the shape, the next ones are filled
        r = _report(host, tcp, error, ms, started=T0 + timedelta(microseconds=-250_000 * i),
                    address=address)  # fmt: skip
        assert report_line(r) == dumps(report_dict(r))
    filled = [t for t in jsonl.LINES._shapes.values() if t is not None]
    plain = address is None and ":" not in host and ms == ms and "192.0.2.213" not in (error or "")
    assert len(filled) == (1 if plain else 0)  # filled where it can be, built in full elsewhere


def test_what_a_shape_is_keyed_on_gives_its_own_row(fresh_shapes):
    rows = [
        _report("10.0.0.1", TcpOutcome.REFUSED, _refused("10.0.0.1"), 0.5),
        _report("10.0.0.2", TcpOutcome.REFUSED, _refused("10.0.0.2", 3390), 0.5, port=3390),
        _report(
            "10.0.0.3",
            TcpOutcome.REFUSED,
            _refused("10.0.0.3"),
            0.5,
            config=RunConfig(timeout_s=7, cookie=None),
        ),
        _report("10.0.0.4", TcpOutcome.TIMEOUT, "no answer within 3.0 s", None),
    ]
    for r in rows * 2:
        assert report_line(r) == dumps(report_dict(r))
    assert len(fresh_shapes._shapes) == 4


def test_an_observation_with_more_than_the_attempt_is_built_in_full(fresh_shapes):
    r = _report("10.0.0.1", TcpOutcome.REFUSED, _refused("10.0.0.1"), 0.5)
    obs = r.observation
    obs.dns_error = "something"
    again = classify(obs, T0)
    assert report_line(again) == dumps(report_dict(again))
    assert not fresh_shapes._shapes  # not a no-listener shape: nothing kept


def test_a_shape_that_fills_wrong_is_caught_and_given_up(fresh_shapes):
    r = _report("10.0.0.1", TcpOutcome.REFUSED, _refused("10.0.0.1"), 0.5)
    assert report_line(r) == dumps(report_dict(r))
    (key,) = fresh_shapes._shapes
    template, row = fresh_shapes._shapes[key]
    fresh_shapes._shapes[key] = (template.replace("refused", "REFUSED"), row)
    fresh_shapes._uses = fresh_shapes.VERIFY_EVERY - 1  # the next use is checked
    other = _report("10.0.0.2", TcpOutcome.REFUSED, _refused("10.0.0.2"), 0.7)
    assert report_line(other) == dumps(report_dict(other))
    assert fresh_shapes._shapes[key] is None  # never filled again
    assert report_line(r) == dumps(report_dict(r))


def test_started_without_microseconds_and_odd_connect_times():
    for i, ms in enumerate([0.0, 1.0, 123456.78, 0.01, 5e-324]):
        host = f"10.2.0.{i + 1}"
        r = _report(host, TcpOutcome.REFUSED, _refused(host), ms, started=T0.replace(microsecond=0))
        assert report_line(r) == dumps(report_dict(r))
