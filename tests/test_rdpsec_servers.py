"""Issue 4 end to end: xrdp with security_layer=rdp at each crypt_level; `check` reports the RDP
version, the Encryption level as the admin knows it, the methods accepted, and the findings."""

from __future__ import annotations

import pytest

from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers


@pytest.mark.parametrize(
    ("crypt_level", "setting", "method", "expect", "absent"),
    [
        ("low", "Low", "40BIT", {"rdpsec.low_level", "rdpsec.weak_methods"}, set()),
        (
            "medium",
            "Client Compatible",
            "40BIT",
            {"rdpsec.low_level", "rdpsec.weak_methods"},
            set(),
        ),
        ("high", "High", "128BIT", set(), {"rdpsec.low_level", "rdpsec.weak_methods"}),
        ("fips", "FIPS Compliant", "FIPS", set(), {"rdpsec.low_level", "rdpsec.weak_methods"}),
    ],
)
async def test_xrdp_encryption_levels(tmp_path, crypt_level, setting, method, expect, absent):
    require_root()
    require_binaries("xrdp")
    with start_xrdp(
        tmp_path, address=loopback_address(), security_layer="rdp", crypt_level=crypt_level
    ) as srv:
        (report,) = await check_target(
            Target(srv.host, srv.port, True),
            CheckOptions(timeouts=Timeouts(connect=2.0, read=4.0, total=30.0)),
        )
    mcs = report.observation.stages["mcs"]
    data = mcs["server_data"]
    assert data["core"]["version"] == "0x00080004"
    assert data["security"]["encryption_method_name"] == method
    assert mcs["encryption_level"]["setting"] == setting
    cert = data["security"]["certificate"]
    assert cert["type"] == "proprietary" and cert["verified"] is True
    ids = {f.id for f in report.findings}
    assert {"rdpsec.in_use", "neg.rdp_security_only"} <= ids
    assert expect <= ids and not absent & ids
    assert "rdpsec.corrupt_certificate" not in ids
