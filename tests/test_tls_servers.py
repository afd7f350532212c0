"""Issue 3 end to end: xrdp with security_layer=tls and certificates the tests make, TLS version
restrictions; each certificate and version finding asserted from a real handshake."""

from __future__ import annotations

import pytest

from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.certs import ca_and_leaf, make_cert
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

pytestmark = pytest.mark.servers
NAME = "rdp.rdprobe.test"
LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"
TIMEOUTS = Timeouts(connect=2.0, read=4.0, total=30.0)


@pytest.fixture(autouse=True)
def _needs():
    require_root()
    require_binaries("xrdp", "openssl")


async def check_by_name(srv, **kw):
    opts = CheckOptions(timeouts=TIMEOUTS, resolve={NAME: [srv.host]}, **kw)
    (report,) = await check_target(Target(NAME, srv.port, False), opts)
    return report


def ids(report):
    return {f.id for f in report.findings}


CERTS = {
    "valid": ({}, set(), {"cert.expired", "cert.name_mismatch", "cert.weak_key"}),
    "expired": ({"not_after_days": -1, "not_before_days": -60}, {"cert.expired"}, set()),
    "not_yet_valid": ({"not_before_days": 10, "not_after_days": 60}, {"cert.not_yet_valid"}, set()),
    "mismatch": ({"cn": "wrong-name.rdprobe.invalid"}, {"cert.name_mismatch"}, set()),
    "rsa1024": ({"bits": 1024}, {"cert.weak_key"}, {"cert.weak_signature"}),
    "sha1": ({"digest": "sha1"}, {"cert.weak_signature"}, {"cert.weak_key"}),
}


def _make(tmp_path, kind):
    import datetime as dt

    spec = CERTS[kind][0]
    now = dt.datetime.now(dt.UTC)
    kw = {}
    if "not_before_days" in spec:
        kw["not_before"] = now + dt.timedelta(days=spec["not_before_days"])
        kw["not_after"] = now + dt.timedelta(days=spec["not_after_days"])
    if "bits" in spec:
        kw["bits"] = spec["bits"]
    if "digest" in spec:
        kw["digest"] = spec["digest"]
    name = spec.get("cn", NAME)
    return make_cert(tmp_path, name, stem=kind, **kw)


@pytest.mark.parametrize("kind", list(CERTS))
async def test_certificate_findings(tmp_path, kind):
    cert = _make(tmp_path, kind)
    with start_xrdp(
        tmp_path,
        address=loopback_address(),
        security_layer="tls",
        cert=cert,
        tls_ciphers=LEGACY_CIPHERS if kind == "rsa1024" else None,
    ) as srv:
        report = await check_by_name(srv, depth="full")
    tls = report.observation.stages["tls"]
    assert tls["error"] is None, tls
    leaf = tls["chain"][0]
    assert leaf["sha1_thumbprint"] and len(leaf["sha1_thumbprint"]) == 40
    assert leaf["self_signed"] is True
    found = ids(report)
    expect, absent = CERTS[kind][1], CERTS[kind][2]
    assert expect <= found, found
    assert not absent & found
    assert "cert.self_signed" in found
    if kind == "valid":
        assert report.certificate.name_match is True
        assert report.certificate.days_left >= 29


async def test_ca_issued_certificate_trusted_only_with_its_ca(tmp_path):
    ca, leaf = ca_and_leaf(tmp_path, NAME)
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=leaf) as srv:
        untrusted = await check_by_name(srv, depth="full")
        trusted = await check_by_name(srv, depth="full", ca_file=str(ca.cert))
    assert untrusted.certificate.trusted is False
    # xrdp names no domain: an unknown CA is information, as a self-signed certificate is there
    assert "cert.untrusted_here" in ids(untrusted) and "cert.untrusted" not in ids(untrusted)
    assert trusted.certificate.trusted is True
    assert not {"cert.untrusted", "cert.untrusted_here"} & ids(trusted)
    assert "cert.self_signed" not in ids(trusted)


async def test_ip_literal_target_is_said_plainly(tmp_path):
    cert = _make(tmp_path, "valid")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=cert) as srv:
        (report,) = await check_target(
            Target(srv.host, srv.port, True), CheckOptions(timeouts=TIMEOUTS)
        )
    f = next(f for f in report.findings if f.id == "cert.ip_target")
    assert srv.host in f.title
    assert "cert.name_mismatch" not in ids(report)


@pytest.mark.parametrize(
    ("protocols", "ciphers", "accepted", "expect", "absent"),
    [
        ("TLSv1.2", None, ["TLSv1.2"], set(), {"tls.no_tls12", "tls.old_versions_only"}),
        ("TLSv1.3", None, ["TLSv1.3"], {"tls.no_tls12"}, {"tls.old_versions_only"}),
        ("TLSv1", LEGACY_CIPHERS, ["TLSv1"], {"tls.old_versions_only"}, {"tls.no_tls12"}),
        (
            "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
            LEGACY_CIPHERS,
            ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
            {"tls.legacy_versions_enabled"},
            {"tls.old_versions_only", "tls.no_tls12"},
        ),
    ],
)
async def test_tls_version_matrix(tmp_path, protocols, ciphers, accepted, expect, absent):
    cert = _make(tmp_path, "valid")
    with start_xrdp(
        tmp_path,
        address=loopback_address(),
        security_layer="tls",
        cert=cert,
        ssl_protocols=protocols,
        tls_ciphers=ciphers,
    ) as srv:
        report = await check_by_name(srv, depth="full")
    versions = report.observation.stages["tls_versions"]
    assert versions["accepted"] == accepted, versions
    assert expect <= ids(report)
    assert not absent & ids(report)
