"""The test rig itself: real servers start, answer on the wire, and stop cleanly."""

from __future__ import annotations

import datetime as dt
import errno
import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from rig import (
    missing_binaries,
    require_binaries,
    require_root,
    server_pool,
    socket_listening,
)
from rig.certs import MISMATCH_NAME, cert_set
from rig.netns import netns, run_in
from rig.ports import free_port, loopback_address, port_is_free
from rig.services import start_nginx, start_sshd
from rig.shadow import start_shadow
from rig.xrdp import edit_ini, start_xrdp

# TPKT + X.224 Connection Request + RDP_NEG_REQ asking for SSL|HYBRID ([MS-RDPBCGR] 2.2.1.1).
X224_CR_HYBRID = bytes.fromhex("030000130ee000000000000100080003000000")
X224_CR_SSL = bytes.fromhex("030000130ee000000000000100080001000000")
IO_TIMEOUT = 3.0


def _exchange(host: str, port: int, data: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(data)
        return sock.recv(4096)


def _assert_stopped(srv) -> None:
    for proc in srv.processes:
        assert proc.popen.returncode is not None, f"{proc.name} not reaped"
        assert not socket_listening(proc.pid, srv.host, srv.port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(srv.address, timeout=IO_TIMEOUT).close()


def _tls_version(host: str, port: int, version: ssl.TLSVersion) -> str | None:
    """X.224 request for SSL, then a TLS handshake pinned to `version`; None if refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # TLSv1/TLSv1_1 members are deprecated, still work
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(X224_CR_SSL)
        assert sock.recv(4096)[-4:] == b"\x01\x00\x00\x00"
        try:
            with ctx.wrap_socket(sock) as tls:
                return tls.version()
        except (ssl.SSLError, ConnectionError):
            return None


# --- no servers needed ---------------------------------------------------------------------


def test_loopback_addresses_are_distinct_and_ports_free() -> None:
    addrs = [loopback_address() for _ in range(50)]
    assert len(set(addrs)) == 50
    assert all(a.startswith("127.77.") for a in addrs)
    port = free_port(addrs[0])
    assert port_is_free(addrs[0], port)
    with socket.socket() as held:
        held.bind((addrs[0], port))
        held.listen(1)
        assert not port_is_free(addrs[0], port)


def test_edit_ini_replaces_and_adds_keys() -> None:
    text = "[Globals]\nport=3389\n; port=1\n[Logging]\nLogFile=x.log\n"
    out = edit_ini(text, {"Globals": {"port": "tcp://127.0.0.1:1", "tls_ciphers": "X"}})
    assert out.splitlines() == [
        "[Globals]",
        "port=tcp://127.0.0.1:1",
        "; port=1",
        "tls_ciphers=X",
        "[Logging]",
        "LogFile=x.log",
    ]


def test_certificates(tmp_path: Path) -> None:
    if missing_binaries("openssl"):
        pytest.skip("missing binary: openssl")
    certs = cert_set(tmp_path, "127.77.0.1")
    now = dt.datetime.now(dt.UTC)

    def load(kind: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(certs[kind].cert.read_bytes())

    valid = load("valid")
    assert valid.not_valid_before_utc < now < valid.not_valid_after_utc
    assert valid.public_key().key_size == 2048  # type: ignore[union-attr]
    assert isinstance(valid.signature_hash_algorithm, hashes.SHA256)
    san = valid.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.77.0.1"]
    assert valid.issuer == valid.subject
    assert load("expired").not_valid_after_utc < now
    assert load("not_yet_valid").not_valid_before_utc > now
    mismatch = load("mismatch")
    assert mismatch.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        MISMATCH_NAME
    )
    assert load("rsa1024").public_key().key_size == 1024  # type: ignore[union-attr]
    assert isinstance(load("sha1").signature_hash_algorithm, hashes.SHA1)
    ca, leaf = load("ca"), load("leaf")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.issuer == ca.subject
    leaf.verify_directly_issued_by(ca)
    with pytest.raises(Exception):  # noqa: B017 - any signature failure type
        leaf.verify_directly_issued_by(valid)
    key = certs["valid"].key.read_bytes()
    assert b"PRIVATE KEY" in key
    assert isinstance(valid.public_key(), rsa.RSAPublicKey)


# --- real servers ------------------------------------------------------------------------

# Observed xrdp 0.9.21 answers to a request for SSL|HYBRID: never HYBRID (no NLA in xrdp).
XRDP_SELECTED = {"negotiate": 1, "tls": 1, "rdp": 0}


@pytest.mark.servers
@pytest.mark.parametrize("mode", ["negotiate", "tls", "rdp"])
def test_xrdp_answers_connection_request(tmp_path: Path, mode: str) -> None:
    require_binaries("xrdp", "openssl")
    with start_xrdp(tmp_path, address=loopback_address(), security_layer=mode) as srv:
        assert srv.start_seconds < 10
        reply = _exchange(srv.host, srv.port, X224_CR_HYBRID)
        assert reply[:2] == b"\x03\x00"
        assert int.from_bytes(reply[2:4], "big") == len(reply) == 19
        assert reply[5] == 0xD0  # X.224 Connection Confirm
        assert reply[11] == 0x02  # TYPE_RDP_NEG_RSP
        assert int.from_bytes(reply[-4:], "little") == XRDP_SELECTED[mode]
    _assert_stopped(srv)


@pytest.mark.servers
def test_xrdp_tls_versions(tmp_path: Path) -> None:
    require_binaries("xrdp", "openssl")
    addr = loopback_address()
    with start_xrdp(tmp_path, address=addr, security_layer="tls") as default:
        assert _tls_version(default.host, default.port, ssl.TLSVersion.TLSv1) is None
        assert _tls_version(default.host, default.port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with start_xrdp(
        tmp_path,
        address=addr,
        port=3390,
        security_layer="tls",
        ssl_protocols="TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
        tls_ciphers="DEFAULT:@SECLEVEL=0",
    ) as old:
        assert _tls_version(old.host, old.port, ssl.TLSVersion.TLSv1) == "TLSv1"
        assert _tls_version(old.host, old.port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


@pytest.mark.servers
def test_xrdp_instances_coexist_and_cleanup_on_error(tmp_path: Path) -> None:
    require_binaries("xrdp", "openssl")
    first = start_xrdp(tmp_path, address=loopback_address())
    with first, start_xrdp(tmp_path, address=loopback_address(), security_layer="rdp") as second:
        assert first.processes[0].pid != second.processes[0].pid
        assert _exchange(*first.address, X224_CR_HYBRID)[-4:] == b"\x01\x00\x00\x00"
        assert _exchange(*second.address, X224_CR_HYBRID)[-4:] == b"\x00\x00\x00\x00"
    _assert_stopped(first)
    _assert_stopped(second)
    with pytest.raises(ZeroDivisionError), start_xrdp(tmp_path, address=loopback_address()) as s:
        _ = 1 / 0
    _assert_stopped(s)


@pytest.mark.servers
def test_start_failure_raises_with_log_tail(tmp_path: Path) -> None:
    require_binaries("nginx")
    addr = loopback_address()
    with socket.socket() as squatter:
        squatter.bind((addr, 8080))
        squatter.listen(1)
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="Address already in use"):
            start_nginx(tmp_path, address=addr, port=8080, timeout=5)
        assert time.monotonic() - started < 6


@pytest.mark.servers
def test_shadow_nla_selects_hybrid(tmp_path: Path) -> None:
    require_binaries("freerdp-shadow-cli", "winpr-hash", "Xvfb", "xdpyinfo", "openssl")
    with start_shadow(tmp_path, address=loopback_address(), sec="nla") as srv:
        assert srv.hostname == socket.gethostname()
        reply = _exchange(srv.host, srv.port, X224_CR_HYBRID)
        assert reply[:2] == b"\x03\x00"
        assert reply[5] == 0xD0
        assert reply[11] == 0x02  # TYPE_RDP_NEG_RSP
        assert reply[-4:] == b"\x02\x00\x00\x00"  # PROTOCOL_HYBRID
        # Asking for SSL alone: RDP_NEG_FAILURE HYBRID_REQUIRED_BY_SERVER (5).
        failure = _exchange(srv.host, srv.port, X224_CR_SSL)
        assert failure[11] == 0x03
        assert failure[-4:] == b"\x05\x00\x00\x00"
        # A second instance (own Xvfb, own HOME) coexists; /sec:tls selects PROTOCOL_SSL.
        with start_shadow(tmp_path, address=loopback_address(), sec="tls") as tls:
            assert tls.display != srv.display
            assert _exchange(*tls.address, X224_CR_HYBRID)[-4:] == b"\x01\x00\x00\x00"
        _assert_stopped(tls)
    _assert_stopped(srv)


@pytest.mark.servers
def test_nginx_http_and_tls_only(tmp_path: Path) -> None:
    require_binaries("nginx", "openssl")
    addr = loopback_address()
    with (
        start_nginx(tmp_path, address=addr, port=8080) as http,
        start_nginx(tmp_path, address=addr, port=8443, tls=True) as https,
    ):
        reply = _exchange(http.host, http.port, b"GET / HTTP/1.0\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200")
        assert b"\r\nServer: nginx/" in reply
        # A TLS-only nginx port answers an X.224 request with plaintext HTTP 400.
        assert _exchange(https.host, https.port, X224_CR_HYBRID).startswith(b"HTTP/1.1 400")
        ctx = ssl.create_default_context(cafile=https.cert.cert)
        with (
            socket.create_connection(https.address, timeout=IO_TIMEOUT) as raw,
            ctx.wrap_socket(raw, server_hostname=addr) as tls,
        ):
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert b"Server: nginx/" in tls.recv(4096)
    _assert_stopped(http)
    _assert_stopped(https)


@pytest.mark.servers
def test_sshd_banner(tmp_path: Path) -> None:
    require_binaries("sshd", "ssh-keygen")
    with start_sshd(tmp_path, address=loopback_address(), port=2222) as srv:
        with socket.create_connection(srv.address, timeout=IO_TIMEOUT) as sock:
            sock.settimeout(IO_TIMEOUT)
            assert sock.recv(256).startswith(b"SSH-2.0-")
    _assert_stopped(srv)


@pytest.mark.servers
def test_server_pool_stops_everything_on_error(tmp_path: Path) -> None:
    require_binaries("sshd", "ssh-keygen", "nginx")
    addr = loopback_address()
    with pytest.raises(KeyError), server_pool() as servers:
        servers.append(start_sshd(tmp_path, address=addr, port=2222))
        servers.append(start_nginx(tmp_path, address=addr, port=8080))
        assert all(s.alive() for s in servers)
        raise KeyError("test body failed")
    assert len(servers) == 2
    for srv in servers:
        _assert_stopped(srv)


CONNECT_PROBE = r"""
import errno, socket, sys
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
        print(port, "connected")
    except TimeoutError:
        print(port, "timeout")
    except OSError as e:
        print(port, errno.errorcode[e.errno])
    finally:
        s.close()
"""


@pytest.mark.servers
def test_netns_drop_and_reject(tmp_path: Path) -> None:
    require_binaries("ip", "nft")
    with netns("rigtest") as ns:
        ns.drop_tcp(3389)
        ns.reject_tcp(3390)
        ns.reject_tcp(3391, "admin-prohibited")
        ns.reset_tcp(3392)
        res = run_in(
            ns, [sys.executable, "-c", CONNECT_PROBE, "3389", "3390", "3391", "3392", "3393"]
        )
        assert res.returncode == 0, res.stderr
        outcome = dict(line.split() for line in res.stdout.splitlines())
        assert outcome == {
            "3389": "timeout",
            "3390": errno.errorcode[errno.EHOSTUNREACH],
            "3391": errno.errorcode[errno.EHOSTUNREACH],  # admin-prohibited: measured the same
            "3392": errno.errorcode[errno.ECONNREFUSED],
            "3393": errno.errorcode[errno.ECONNREFUSED],  # no rule, no listener
        }
        name = ns.name
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    assert name not in listed.stdout.split()


@pytest.mark.servers
def test_xrdp_inside_netns(tmp_path: Path) -> None:
    require_binaries("xrdp", "ip", "nft", "openssl")
    with netns("rigxrdp") as ns, start_xrdp(tmp_path, address="127.0.0.1", netns=ns.name) as srv:
        probe = (
            "import socket; s = socket.create_connection(('127.0.0.1', 3389), timeout=3);"
            f"s.sendall(bytes.fromhex('{X224_CR_HYBRID.hex()}')); print(s.recv(64).hex())"
        )
        res = run_in(ns, [sys.executable, "-c", probe], timeout=10)
        assert bytes.fromhex(res.stdout.strip())[:2] == b"\x03\x00", res.stderr
    for proc in srv.processes:
        assert proc.popen.returncode is not None


def test_require_root_skips_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_root()
