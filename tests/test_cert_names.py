"""Issue 9, name mismatch: what the client will say (the certificate's names, listed) and where
those names point, resolved by the live adapter (bounded, under the target's deadline, the
--resolve overrides first) and judged in analysis. Real xrdp on loopback; every lookup is an
override or an RFC 6761 name, so nothing leaves the machine (tests/conftest.py sets
RDPROBE_NAME_LOOKUP=local)."""

from __future__ import annotations

import asyncio

import pytest

from rdprobe.analysis.certificate_verdict import names_point_at
from rdprobe.analysis.consistency import violations
from rdprobe.analysis.facts import NameLookup, TlsFacts
from rdprobe.analysis.findings import Severity
from rdprobe.defaults import MAX_CERT_NAME_LOOKUPS
from rdprobe.live import names
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rig import require_binaries, require_root
from rig.certs import make_cert, mismatched_cert
from rig.ports import loopback_address
from rig.xrdp import start_xrdp

TIMEOUTS = Timeouts(connect=2.0, read=4.0, total=30.0)
OTHER = "other-host.rdprobe.test"


def ids(report):
    return {f.id for f in report.findings}


def by_id(report, fid):
    return next(f for f in report.findings if f.id == fid)


async def check_ip(srv, **kw):
    opts = CheckOptions(timeouts=TIMEOUTS, stages=frozenset({"tls"}), **kw)
    (report,) = await check_target(Target(srv.host, srv.port, True), opts)
    assert not violations(report)
    return report


@pytest.fixture
def _servers():
    require_root()
    require_binaries("xrdp", "openssl")


# -- real xrdp, reached by IP --------------------------------------------------------------------


@pytest.mark.servers
async def test_ip_target_lists_the_names_and_says_they_point_here(tmp_path, _servers):
    cert = make_cert(tmp_path, OTHER, san=[OTHER, "alias.rdprobe.test"])
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=cert) as srv:
        report = await check_ip(srv, resolve={OTHER: [srv.host]})
    f = by_id(report, "cert.ip_target")
    # what the client says: a name mismatch, with the names the certificate holds
    assert f.title.startswith("Name mismatch")
    assert OTHER in f.title and "alias.rdprobe.test" in f.title and srv.host in f.title
    assert f.evidence["names"] == [OTHER, "alias.rdprobe.test"]
    assert "name mismatch" in f.spec.cause
    # the lookup: the override answered for OTHER, alias was not looked up (local mode)
    lookups = {n["name"]: n for n in report.observation.stages["tls"]["name_lookups"]}
    assert lookups[OTHER] == {
        "name": OTHER,
        "addresses": [srv.host],
        "error": None,
        "via": "--resolve",
    }
    assert lookups["alias.rdprobe.test"]["via"] == "not looked up"
    assert report.certificate.names_point_here is True
    assert f"{OTHER} resolves to {srv.host}" in f.title
    assert "cert.names_elsewhere" not in ids(report)


@pytest.mark.servers
async def test_certificate_whose_names_point_elsewhere_is_a_warning(tmp_path, _servers):
    """A certificate copied from another server: its name resolves, but not to this address."""
    cert = make_cert(tmp_path, OTHER, san=[OTHER])
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=cert) as srv:
        report = await check_ip(srv, resolve={OTHER: ["127.0.0.1", "::1"]})
    assert {"cert.ip_target", "cert.names_elsewhere"} <= ids(report)
    f = by_id(report, "cert.names_elsewhere")
    assert f.severity is Severity.WARNING
    assert srv.host in f.title and f"{OTHER} -> 127.0.0.1, ::1" in f.title
    assert "copied from another server" in f.spec.cause
    assert report.certificate.names_point_here is False
    assert "none at " + srv.host in report.certificate.names_point_reason


@pytest.mark.servers
async def test_localhost_certificate_by_name_resolves_without_a_query(tmp_path, _servers):
    """Connected by a name the certificate lacks; its name `localhost` is loopback (RFC 6761)
    and is not this server's 127.77.x.y address: a mismatch and names pointing elsewhere."""
    cert = make_cert(tmp_path, "localhost", san=["localhost"])
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=cert) as srv:
        opts = CheckOptions(
            timeouts=TIMEOUTS, stages=frozenset({"tls"}), resolve={"rdp.rdprobe.test": [srv.host]}
        )
        (report,) = await check_target(Target("rdp.rdprobe.test", srv.port, False), opts)
    assert not violations(report)
    f = by_id(report, "cert.name_mismatch")
    assert (
        f.title
        == "Name mismatch: the certificate's names (localhost) do not include rdp.rdprobe.test"
    )
    (lookup,) = report.observation.stages["tls"]["name_lookups"]
    assert lookup == {"name": "localhost", "addresses": ["127.0.0.1", "::1"], "error": None,
                      "via": "rfc6761"}  # fmt: skip
    assert "cert.names_elsewhere" in ids(report)


@pytest.mark.servers
async def test_lookups_are_bounded_and_skip_wildcards(tmp_path, _servers):
    many = [f"n{i}.rdprobe.test" for i in range(8)]
    cert = make_cert(tmp_path, "*.rdprobe.test", san=["*.rdprobe.test", *many])
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=cert) as srv:
        report = await check_ip(srv, resolve={n: [srv.host] for n in many})
    looked = [n["name"] for n in report.observation.stages["tls"]["name_lookups"]]
    assert looked == many[:MAX_CERT_NAME_LOOKUPS]
    assert report.certificate.names_point_here is True


@pytest.mark.servers
async def test_no_lookup_when_the_name_matches_or_lookups_are_off(tmp_path, _servers):
    address = loopback_address()
    cert = make_cert(tmp_path, address)  # names the address itself
    with start_xrdp(tmp_path, address=address, security_layer="tls", cert=cert) as srv:
        matched = await check_ip(srv, resolve={address: [address]})
    assert matched.observation.stages["tls"]["name_lookups"] == []
    assert matched.certificate.name_match is True
    other = mismatched_cert(tmp_path / "m", "x")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer="tls", cert=other) as srv:
        off = await check_ip(srv, name_lookup="off", resolve={other.name: ["127.0.0.1"]})
    assert off.observation.stages["tls"]["name_lookups"] == []
    assert off.certificate.names_point_here is None
    assert "cert.ip_target" in ids(off) and "cert.names_elsewhere" not in ids(off)


# -- the lookup itself ---------------------------------------------------------------------------


async def test_lookup_answers_overrides_and_rfc6761_names_without_a_query():
    over = await names.lookup("a.example.test", 1.0, {"a.example.test": ["127.0.0.9"]})
    assert over == NameLookup("a.example.test", ("127.0.0.9",), None, "--resolve")
    upper = await names.lookup("A.Example.TEST.", 1.0, {"a.example.test": ["127.0.0.9"]})
    assert upper.addresses == ("127.0.0.9",) and upper.via == "--resolve"
    assert (await names.lookup("LOCALHOST.", 1.0)).addresses == ("127.0.0.1", "::1")
    assert (await names.lookup("x.localhost", 1.0)).via == "rfc6761"
    invalid = await names.lookup("wrong-name.rdprobe.invalid", 1.0, mode="dns")
    assert invalid.addresses == () and "RFC 6761" in invalid.error
    local = await names.lookup("b.example.test", 1.0, mode="local")
    assert local.via == "not looked up" and "local" in local.error
    late = await names.lookup("b.example.test", 0.0, mode="dns")
    assert late.via == "not looked up" and late.error == "no time left for a lookup"


def test_the_test_suite_never_queries_dns():
    assert names.lookup_mode() == "local"


def _hosts_file_name() -> str | None:
    """A name /etc/hosts maps to loopback (answered by the files source: no query leaves)."""
    try:
        lines = open("/etc/hosts").read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split("#")[0].split()
        if len(parts) >= 2 and parts[0].startswith("127."):
            for name in parts[1:]:
                if name != "localhost" and "." not in name:
                    return name
    return None


async def test_dns_mode_uses_the_system_resolver_for_a_hosts_file_name():
    name = _hosts_file_name()
    if name is None:
        pytest.skip("no loopback name in /etc/hosts besides localhost")
    found = await names.lookup(name, 2.0, mode="dns")
    assert found.via == "dns" and found.error is None
    assert all(a.startswith("127.") or a == "::1" for a in found.addresses) and found.addresses


def test_lookup_names_bounds_dedups_and_skips_wildcards_and_ips():
    got = names.lookup_names(["*.a.test", "a.test", "A.TEST.", "10.0.0.1", *"bcdefg"])
    assert got == ["a.test", "b", "c", "d"][:MAX_CERT_NAME_LOOKUPS]


async def test_lookups_run_at_once_within_the_limit():
    started = asyncio.get_running_loop().time()
    got = await names.lookup_all(
        [f"n{i}.test" for i in range(4)], 1.0, {"n0.test": ["::1"]}, mode="local"
    )
    assert [g.via for g in got] == ["--resolve", *["not looked up"] * 3]
    assert asyncio.get_running_loop().time() - started < 1.0


# -- the verdict (pure) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookups", "address", "expect"),
    [
        ((), "10.0.0.5", None),
        ((NameLookup("a", ("10.0.0.5",)),), None, None),
        ((NameLookup("a", ("10.0.0.5",)),), "10.0.0.5", True),
        ((NameLookup("a", ("::ffff:10.0.0.5",)),), "10.0.0.5", True),
        ((NameLookup("a", ("2001:db8::1",)),), "2001:DB8:0::1", True),
        ((NameLookup("a", ("10.0.0.6",)), NameLookup("b", (), "NXDOMAIN")), "10.0.0.5", False),
        ((NameLookup("a", (), "NXDOMAIN"),), "10.0.0.5", None),
        ((NameLookup("a", ("10.0.0.6",)), NameLookup("b", ("10.0.0.5",))), "10.0.0.5", True),
    ],
)
def test_names_point_at(lookups, address, expect):
    here, reason = names_point_at(lookups, address)
    assert here is expect
    assert reason


def test_name_lookups_round_trip_through_json():
    tls = TlsFacts(
        "SSL", "SSL", "TLSv1.2", "X", 128, None, server_name="10.0.0.5",
        name_lookups=(NameLookup("a.test", ("10.0.0.6",), None, "dns"),
                      NameLookup("b.test", (), "NXDOMAIN", "dns")),
    )  # fmt: skip
    assert TlsFacts.from_dict(tls.to_dict()) == tls
