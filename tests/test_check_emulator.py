"""`check` against every emulator profile (bytes of real Windows servers and real failure modes):
each diagnosed right, and no case runs past its deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from rdprobe.analysis.consistency import violations
from rdprobe.emulate.profiles import PROFILES
from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts

TIMEOUTS = Timeouts(connect=1.5, read=1.5, total=8.0)
MCS = frozenset({"mcs"})

# profile -> (outcome, finding ids that must be there, finding ids that must not)
EXPECTED = {
    "win2003-legacy": (
        "rdp",
        {"neg.legacy_server", "rdpsec.in_use", "rdpsec.low_level"},
        {"neg.nla_required"},
    ),
    "win2000-legacy": ("rdp", {"neg.legacy_server", "rdpsec.weak_methods"}, set()),
    "win2008-x509": ("rdp", {"neg.nla_not_required", "rdpsec.in_use"}, {"neg.legacy_server"}),
    "win2008r2-tls": ("rdp", {"neg.tls_required", "neg.legacy_clients_refused"}, {"rdpsec.in_use"}),
    "win2012-negotiate": ("rdp", {"neg.nla_not_required"}, {"neg.tls_required"}),
    "win10-nla": (
        "rdp",
        {"neg.nla_required", "neg.legacy_clients_refused"},
        {"neg.nla_not_required"},
    ),
    "rdp-only": ("rdp", {"neg.rdp_security_only", "rdpsec.in_use"}, {"tcp.dropped_after_confirm"}),
    "rdp-proprietary": ("rdp", {"neg.rdp_security_only"}, {"rdpsec.corrupt_certificate"}),
    "rdp-x509": ("rdp", {"neg.rdp_security_only", "rdpsec.in_use"}, {"rdpsec.corrupt_certificate"}),
    "corrupt-certificate": ("rdp", {"rdpsec.corrupt_certificate"}, set()),
    "ssl-cert-missing": ("rdp", {"neg.ssl_cert_not_on_server"}, set()),
    "win-tls-selfsigned": ("rdp", {"neg.nla_not_required"}, set()),
    "win2012-tls-nla": ("rdp", {"neg.nla_not_required"}, {"neg.tls_required"}),
    "xrdp-rdsaad": ("rdp", {"neg.nla_not_required"}, set()),
    "accept-reset": ("reset", {"tcp.reset_before_reply"}, {"rdp.answered"}),
    "accept-close": ("closed", {"tcp.closed_before_reply"}, {"rdp.answered"}),
    "silent": ("silent", {"tcp.silent"}, set()),
    "drip": ("slow", {"x224.slow"}, set()),
    "oversized": ("oversized", {"x224.oversized"}, set()),
    "truncated": ("truncated", {"x224.truncated"}, set()),
    "garbage": ("not_rdp", {"service.unknown"}, {"service.conflict"}),
    "mutated-confirm": ("not_rdp", {"service.unknown"}, {"service.conflict", "rdp.answered"}),
    "iso-transport": ("x224_not_rdp", {"x224.not_rdp"}, {"rdp.answered", "neg.legacy_server"}),
    "flapping-legacy": (
        "rdp",
        {"tcp.intermittent"},
        {"neg.legacy_clients_refused", "x224.disconnect"},
    ),
    "reset-after-confirm": ("rdp", {"tcp.dropped_after_confirm"}, set()),
    "busy": ("rdp", {"tcp.intermittent"}, set()),
    "flapping": ("rdp", {"tcp.intermittent"}, set()),
    "http": ("wrong_service", {"service.conflict"}, set()),
    "ssh": ("wrong_service", {"service.conflict"}, set()),
    "smtp": ("wrong_service", {"service.conflict"}, set()),
    "ftp": ("wrong_service", {"service.conflict"}, set()),
    "pop3": ("wrong_service", {"service.conflict"}, set()),
    "imap": ("wrong_service", {"service.conflict"}, set()),
    "vnc": ("wrong_service", {"service.conflict"}, set()),
    "tls-direct": ("wrong_service", {"service.conflict"}, set()),
    # issue 10's session hosts (spec-built): at depth full with the mcs stage alone they are
    # Standard RDP Security at level NONE; the session walk itself is tested in
    # test_session_hostile.py
    **{
        name: ("rdp", {"neg.rdp_security_only", "rdpsec.no_encryption"}, {"neg.nla_required"})
        for name in (
            "session-valid-client",
            "session-license-error",
            "session-no-license-server",
            "session-denied",
            "session-deactivate",
            "session-busy",
        )
    },
}
# the spec-built NLA logon profiles (tests/test_auth_emulator.py logs on to them): without
# --user they are NLA-required listeners like win10-nla
EXPECTED.update(
    {
        name: ("rdp", {"neg.nla_required"}, {"neg.nla_not_required"})
        for name in PROFILES
        if name.startswith("win-nla-")
    }
)
SERVICE_NAMES = {
    "http": "HTTP",
    "ssh": "SSH",
    "smtp": "SMTP",
    "ftp": "FTP",
    "pop3": "POP3",
    "imap": "IMAP",
    "vnc": "VNC",
    "tls-direct": "TLS",
    "garbage": "unknown",
    "mutated-confirm": "unknown",
}


def test_every_tcp_profile_has_an_expectation():
    tcp = {name for name, p in PROFILES.items() if p.transport == "tcp"}
    assert tcp == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_profile_is_diagnosed(name):
    outcome, present, absent = EXPECTED[name]
    async with await serve(name, "127.0.0.1", 0) as server:
        started = time.monotonic()
        (report,) = await asyncio.wait_for(
            check_target(
                Target("127.0.0.1", server.port, True), CheckOptions(timeouts=TIMEOUTS, stages=MCS)
            ),
            TIMEOUTS.total + 5,
        )
        elapsed = time.monotonic() - started
    ids = {f.id for f in report.findings}
    assert report.outcome == outcome, (report.outcome, ids)
    assert present <= ids, ids
    assert not absent & ids, ids
    assert elapsed < TIMEOUTS.total + 1
    assert violations(report) == []
    if name in SERVICE_NAMES:
        assert report.service.name == SERVICE_NAMES[name]


async def test_legacy_windows_2003_facts():
    async with await serve("win2003-legacy", "127.0.0.1", 0) as server:
        (report,) = await check_target(
            Target("127.0.0.1", server.port, True), CheckOptions(timeouts=TIMEOUTS, stages=MCS)
        )
    mcs = report.observation.stages["mcs"]
    assert mcs["server_data"]["core"]["version"] == "0x00080004"
    sec = mcs["server_data"]["security"]
    assert sec["encryption_method_name"] == "128BIT"
    assert sec["certificate"]["type"] == "proprietary" and sec["certificate"]["verified"] is True
    assert report.setting.legacy_server is True
    assert all(a.tpdu.src_ref == 0x1234 for a in report.observation.attempts)


async def test_repeat_counts_outcomes_and_latency():
    async with await serve("flapping", "127.0.0.1", 0) as server:
        opts = CheckOptions(timeouts=TIMEOUTS, repeat=9, depth="x224")
        (report,) = await check_target(Target("127.0.0.1", server.port, True), opts)
    rep = report.observation.repeat
    assert rep.tries == 9
    assert rep.outcomes.get("rdp", 0) >= 5 and sum(rep.outcomes.values()) == 9
    assert rep.outcomes.get("reset", 0) >= 2
    assert set(rep.connect_ms) == {"p50", "p90", "p99", "max"}
    assert "tcp.intermittent" in {f.id for f in report.findings}


async def test_udp_profile_answers_and_closed_port_is_told_apart():
    async with await serve("rdpudp", "127.0.0.1", 0, udp=True) as server:
        opts = CheckOptions(timeouts=TIMEOUTS, udp=True, stages=frozenset({"udp"}))
        (report,) = await check_target(Target("127.0.0.1", server.port, True), opts)
    udp = report.observation.stages["udp"]
    assert udp["outcome"] == "synack" and udp["ack_matches"] is True
    assert udp["amplification"] <= 1.0
    assert "udp.enabled" in {f.id for f in report.findings}


async def test_depth_tcp_only_connects():
    async with await serve("win10-nla", "127.0.0.1", 0) as server:
        opts = CheckOptions(timeouts=TIMEOUTS, depth="tcp")
        (report,) = await check_target(Target("127.0.0.1", server.port, True), opts)
        await asyncio.sleep(0.05)
    assert report.outcome == "open"
    assert [f.id for f in report.findings] == ["tcp.open"]
    (a,) = report.observation.attempts
    assert a.reply == b"" and a.reply_kind is None


async def test_all_addresses_probes_every_address_of_a_name():
    import socket

    infos = socket.getaddrinfo("localhost", 1, type=socket.SOCK_STREAM)
    addresses = {str(i[4][0]) for i in infos}
    opts = CheckOptions(timeouts=TIMEOUTS, depth="tcp", all_addresses=True)
    reports = await check_target(Target("localhost", 1, False), opts)
    assert {r.observation.address for r in reports} == addresses
    assert all(r.outcome == "refused" for r in reports)
    (first,) = await check_target(
        Target("localhost", 1, False), CheckOptions(timeouts=TIMEOUTS, depth="tcp")
    )
    assert first.observation.address in addresses


async def test_all_addresses_of_a_resolved_name():
    async with await serve("win10-nla", "127.0.0.1", 0) as server:
        opts = CheckOptions(
            timeouts=TIMEOUTS, depth="x224", all_addresses=True,
            resolve={"farm.rdprobe.test": ["127.0.0.1", "127.0.0.2"]},
        )  # fmt: skip
        reports = await check_target(Target("farm.rdprobe.test", server.port, False), opts)
    by_address = {r.observation.address: r.outcome for r in reports}
    assert by_address == {"127.0.0.1": "rdp", "127.0.0.2": "refused"}
