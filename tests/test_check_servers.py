"""`rdprobe check` against real servers started by the tests on 127.x addresses: xrdp in each
security layer, FreeRDP's shadow server with NLA, nginx, sshd, and refused / filtered / unreachable
ports inside a network namespace."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.certs import valid_cert
from rig.netns import netns
from rig.ports import loopback_address
from rig.services import start_nginx, start_sshd
from rig.shadow import start_shadow
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
FAST = Timeouts(connect=2.0, read=3.0, total=20.0)


async def probe(host, port, *, depth="x224", timeout=FAST, **kw):
    (report,) = await check_target(
        Target(host, port, True), CheckOptions(timeouts=timeout, depth=depth, **kw)
    )
    return report


def ids(report):
    return {f.id for f in report.findings}


@pytest.fixture
def xrdp_ok():
    require_root()
    require_binaries("xrdp")


@pytest.mark.parametrize(
    ("layer", "summary_part", "answers", "expect", "absent"),
    [
        (
            "negotiate",
            "Negotiate",
            {
                "RDP": "selected RDP",
                "SSL": "selected SSL",
                "SSL|HYBRID": "selected SSL",
                "no negotiation": "confirm without negotiation data",
            },
            {"neg.nla_not_required"},
            {"neg.nla_required", "neg.rdp_security_only"},
        ),
        (
            "tls",
            "SSL: TLS required",
            {"RDP": "failure SSL_REQUIRED_BY_SERVER", "SSL": "selected SSL"},
            {"neg.tls_required", "neg.nla_not_required"},
            {"neg.rdp_security_only"},
        ),
        (
            "rdp",
            "RDP Security Layer",
            {"RDP": "selected RDP", "SSL": "selected RDP", "SSL|HYBRID": "selected RDP"},
            {"neg.rdp_security_only", "neg.nla_not_required"},
            {"neg.tls_required"},
        ),
    ],
)
async def test_xrdp_security_layers(
    tmp_path, xrdp_ok, layer, summary_part, answers, expect, absent
):
    with start_xrdp(tmp_path, address=loopback_address(), security_layer=layer) as srv:
        report = await probe(srv.host, srv.port)
    assert report.outcome == "rdp"
    assert summary_part in report.setting.summary
    for label, text in answers.items():
        assert report.setting.answers[label].startswith(text), (label, report.setting.answers)
    assert expect <= ids(report)
    assert not absent & ids(report)
    assert report.setting.nla_required is False


async def test_freerdp_shadow_nla(tmp_path):
    require_root()
    require_binaries("freerdp-shadow-cli", "Xvfb", "xdpyinfo", "winpr-hash")
    with start_shadow(tmp_path, address=loopback_address(), sec="nla") as srv:
        report = await probe(srv.host, srv.port, depth="full")
        hostname = srv.hostname
    answers = report.setting.answers
    assert answers["SSL"] == "failure HYBRID_REQUIRED_BY_SERVER"
    assert answers["SSL|HYBRID"].startswith("selected HYBRID")
    assert report.setting.nla_required is True
    assert "NLA required" in report.setting.summary
    assert "neg.nla_required" in ids(report)
    nla = report.observation.stages["nla"]
    challenge = nla["challenge"]
    assert challenge["version"].startswith("6.1.7601")
    assert challenge["nb_computer"].lower() == hostname.split(".")[0].lower()
    assert nla["tsrequest_version"] >= 2
    identity = next(f for f in report.findings if f.id == "nla.identity")
    assert identity.evidence["computer"]
    assert "nla.clock_skew" not in ids(report)  # same machine, same clock


async def test_refused_port_is_refused():
    report = await probe(loopback_address(), 9)  # nothing listens on a fresh 127.77.x.y
    assert report.outcome == "refused"
    assert ids(report) == {"tcp.refused"}


async def test_nginx_is_named(tmp_path):
    require_root()
    require_binaries("nginx")
    with start_nginx(tmp_path, address=loopback_address(), port=3389) as srv:
        report = await probe(srv.host, srv.port)
    assert report.outcome == "wrong_service"
    assert report.service.name == "HTTP"
    assert "nginx" in report.service.detail
    (f,) = [f for f in report.findings if f.id == "service.conflict"]
    assert "HTTP" in f.title and "nginx" in f.title


async def test_nginx_tls_only_port_is_https(tmp_path):
    require_root()
    require_binaries("nginx", "openssl")
    cert = valid_cert(tmp_path, "web.rdprobe.test")
    with start_nginx(tmp_path, address=loopback_address(), port=3389, tls=True, cert=cert) as srv:
        report = await probe(srv.host, srv.port)
    assert report.outcome == "wrong_service"
    assert report.service.name == "HTTPS"
    assert "TLS" in report.service.detail


async def test_sshd_is_named(tmp_path):
    require_root()
    require_binaries("sshd", "ssh-keygen")
    with start_sshd(tmp_path, address=loopback_address(), port=3389) as srv:
        report = await probe(srv.host, srv.port)
    assert report.outcome == "wrong_service"
    assert report.service.name == "SSH"
    assert report.service.detail.startswith("SSH-2.0-OpenSSH")


def _check_inside(ns, target: str, timeout: float) -> dict:
    argv = [sys.executable, "-m", "rdprobe", "check", target, "--json"]
    argv += ["--timeout", str(timeout), "--depth", "x224"]
    done = subprocess.run(ns.exec_argv(argv), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout)


def test_filtered_and_unreachable_told_apart_in_a_namespace():
    require_root()
    require_binaries("ip", "nft")
    with netns("rdprobe-check") as ns:
        ns.drop_tcp(3389)
        ns.reject_tcp(3390, "host-unreachable")
        started = time.monotonic()
        filtered = _check_inside(ns, "127.0.0.1:3389", 1.0)
        assert time.monotonic() - started < 30
        unreachable = _check_inside(ns, "127.0.0.1:3390", 1.0)
        refused = _check_inside(ns, "127.0.0.1:3391", 1.0)
    assert filtered["outcome"] == "timeout"
    assert [f["id"] for f in filtered["findings"]] == ["tcp.timeout"]
    assert (
        "cannot be told apart" in filtered["findings"][0]["cause"]
        or "cannot" in filtered["findings"][0]["cause"]
    )
    assert unreachable["outcome"] == "host_unreachable"
    assert [f["id"] for f in unreachable["findings"]] == ["tcp.host_unreachable"]
    assert refused["outcome"] == "refused"
