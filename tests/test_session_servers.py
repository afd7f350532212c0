"""Issue 10 against real servers: the walk to the Demand Active through the real security
exchange. xrdp at every crypt_level with security_layer rdp, and in negotiate and tls modes;
FreeRDP's shadow server with /sec:rdp and /sec:tls. xrdp drops a Client Info it cannot
decrypt ("received wrong flags, likely decrypt not working"), and at high and fips it encrypts
what it sends, which the walk decrypts and MAC-checks: reaching the Demand Active proves the
keys, the MAC and the cipher both ways."""

from __future__ import annotations

import time

import pytest

from rdprobe.analysis.session_facts import SessionFacts, Step
from rdprobe.live.negotiate import Request
from rdprobe.live.session_open import probe_session
from rdprobe.live.timing import Deadline, Timeouts
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.shadow import start_shadow
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers

TIMEOUTS = Timeouts(connect=2.0, read=5.0, total=20.0)
RDP = Request("RDP", 0)
SSL = Request("SSL", 1)
XRDP_LICENSING = ("server LICENSE_REQUEST", "client NEW_LICENSE_REQUEST", "server ERROR_ALERT")


async def _walk(host: str, port: int, request: Request) -> tuple[SessionFacts, float]:
    started = time.monotonic()
    facts = await probe_session(host, port, request, cookie="rdprobe", timeouts=TIMEOUTS,
                                deadline=Deadline(TIMEOUTS.total))  # fmt: skip
    return facts, time.monotonic() - started


def _assert_xrdp_demand_active(facts: SessionFacts) -> None:
    assert facts.reached_logon, facts.outcome
    assert [s.step for s in facts.steps][-3:] == [Step.CLIENT_INFO, Step.LICENSING,
                                                  Step.DEMAND_ACTIVE]  # fmt: skip
    lic = facts.licensing
    assert lic is not None and lic.outcome == "valid_client"
    assert lic.messages == XRDP_LICENSING and lic.error_name == "STATUS_VALID_CLIENT"
    assert (lic.company, lic.scopes) == ("Microsoft Corporation", ("microsoft.com",))
    demand = facts.demand_active
    assert demand is not None and demand.source_descriptor == "RDP"
    assert demand.os == "OSMAJORTYPE_WINDOWS/OSMINORTYPE_WINDOWS_NT"
    assert demand.desktop == (1024, 768, 24)  # our client core's size, xrdp's depth
    general = demand.find("CAPSTYPE_GENERAL")
    assert "FASTPATH_OUTPUT_SUPPORTED" in general.get("extra_flags")
    names = [c.name for c in demand.capabilities]
    assert names == [  # xrdp 0.9.21's order; type 6 is no set the specification names
        "CAPSTYPE_SHARE", "CAPSTYPE_GENERAL", "CAPSTYPE_BITMAP", "CAPSTYPE_FONT",
        "CAPSTYPE_ORDER", "CAPSETTYPE_BITMAP_CODECS", "CAPSTYPE_COLORCACHE", "CAPSTYPE_POINTER",
        "CAPSTYPE_INPUT", "UNKNOWN_6", "CAPSETTYPE_MULTIFRAGMENTUPDATE",
        "CAPSSETTYPE_FRAME_ACKNOWLEDGE", "CAPSETTYPE_SURFACE_COMMANDS",
    ]  # fmt: skip
    assert "INPUT_FLAG_UNICODE" in demand.find("CAPSTYPE_INPUT").get("input_flags")
    assert demand.find("CAPSETTYPE_MULTIFRAGMENTUPDATE").get("max_request_size") > 0
    assert demand.find("CAPSTYPE_POINTER").get("color_cache") == 25
    assert demand.find("CAPSTYPE_SHARE").get("node_id") == facts.user_channel == 1004
    assert facts.io_channel == 1003 and facts.joined_channels == (1004, 1003)
    assert facts.error_info == () and facts.ultimatum is None


@pytest.mark.parametrize(
    ("crypt_level", "method", "level"),
    [
        ("none", "NONE", "NONE"),
        ("low", "40BIT", "LOW"),
        ("medium", "40BIT", "CLIENT_COMPATIBLE"),
        ("high", "128BIT", "HIGH"),
        ("fips", "FIPS", "FIPS"),
    ],
)
async def test_xrdp_rdp_security_every_crypt_level(tmp_path, crypt_level, method, level):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="rdp",
                    crypt_level=crypt_level) as srv:  # fmt: skip
        facts, elapsed = await _walk(srv.host, srv.port, RDP)
        log = (srv.workdir / "xrdp.log").read_text()
    _assert_xrdp_demand_active(facts)
    assert (facts.path, facts.encryption_method, facts.encryption_level) == ("rdp", method, level)
    exchanged = facts.time_of(Step.SECURITY_EXCHANGE) is not None
    assert exchanged == (method != "NONE")
    assert f"with security level : {crypt_level}" in log
    assert "decrypt not working" not in log and "MAC checksum error" not in log
    assert elapsed < TIMEOUTS.total


@pytest.mark.parametrize(("layer", "request_", "path"),
                         [("negotiate", SSL, "tls"), ("negotiate", RDP, "rdp"), ("tls", SSL, "tls")])  # fmt: skip
async def test_xrdp_negotiate_and_tls_modes(tmp_path, layer, request_, path):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer=layer,
                    crypt_level="high") as srv:  # fmt: skip
        facts, _ = await _walk(srv.host, srv.port, request_)
    _assert_xrdp_demand_active(facts)
    assert facts.path == path
    if path == "tls":
        assert facts.time_of(Step.TLS) is not None
        assert facts.time_of(Step.SECURITY_EXCHANGE) is None  # TLS encrypts: no RDP keys
        assert (facts.encryption_method, facts.encryption_level) == ("NONE", "NONE")
    else:
        assert facts.encryption_method == "128BIT"
        assert facts.time_of(Step.SECURITY_EXCHANGE) is not None


@pytest.mark.parametrize(("sec", "request_", "path"), [("rdp", RDP, "rdp"), ("tls", SSL, "tls")])
async def test_freerdp_shadow(tmp_path, sec, request_, path):
    require_root()
    require_binaries("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash")
    with start_shadow(tmp_path, address=loopback_address(), sec=sec) as srv:
        facts, _ = await _walk(srv.host, srv.port, request_)
    assert facts.reached_logon, facts.outcome
    assert facts.path == path
    lic = facts.licensing
    assert (
        lic is not None
        and lic.messages == ("server ERROR_ALERT",)
        and lic.outcome == ("valid_client")
    )
    demand = facts.demand_active
    assert demand.os == "OSMAJORTYPE_UNSPECIFIED/OSMINORTYPE_UNSPECIFIED"
    assert demand.desktop == (800, 600, 24)  # the Xvfb screen it shadows
    general = demand.find("CAPSTYPE_GENERAL")
    assert "ENC_SALTED_CHECKSUM" in general.get("extra_flags")
    assert demand.find("CAPSETTYPE_LARGE_POINTER").get("large_pointer_flags") == 3
    assert demand.find("CAPSETTYPE_MULTIFRAGMENTUPDATE").get("max_request_size") > 0
    assert demand.find("CAPSTYPE_VIRTUALCHANNEL").get("vc_chunk_size") == 1600
    names = [c.name for c in demand.capabilities]
    assert "CAPSETTYPE_BITMAP_CODECS" in names and "CAPSSETTYPE_FRAME_ACKNOWLEDGE" in names
    # /sec:rdp: FreeRDP's shadow server selects RDP without encryption (method and level NONE)
    assert (facts.encryption_method, facts.encryption_level) == ("NONE", "NONE")


async def test_xrdp_static_channels_announced_are_joined(tmp_path):
    """Two static channels in the client data: xrdp gives them 1004 and 1005, the user
    channel moves to 1006, and the walk joins all four before the security exchange."""
    require_root()
    require_binaries("xrdp")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="rdp",
                    crypt_level="high") as srv:  # fmt: skip
        facts = await probe_session(
            srv.host, srv.port, RDP, cookie="rdprobe", timeouts=TIMEOUTS,
            deadline=Deadline(TIMEOUTS.total),
            channels=(("cliprdr", 0xC0A00000), ("rdpsnd", 0xC0000000)),
        )  # fmt: skip
    assert facts.reached_logon, facts.outcome
    assert (facts.user_channel, facts.io_channel) == (1006, 1003)
    assert facts.joined_channels == (1006, 1003, 1004, 1005)
