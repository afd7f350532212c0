"""Certificate facts and chain trust (rdprobe.analysis.certificate) on certificates made here."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import random
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rdprobe.analysis.certificate import describe_certificate, match_name
from rdprobe.analysis.certificate_verdict import judge_certificate
from rdprobe.analysis.trust import verify_chain
from rdprobe.protocol.errors import ProtocolError
from rdprobe.trust_store import load_trust_roots

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
VECTORS = json.loads((Path(__file__).parent / "vectors" / "windows-handshakes.json").read_text())
_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    if bits not in _KEYS:
        _KEYS[bits] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _KEYS[bits]


def make_cert(
    cn: str = "rdp.example.test",
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    not_before: datetime = NOW - timedelta(days=10),
    not_after: datetime = NOW + timedelta(days=90),
    key=None,
    issuer: tuple[x509.Name, object] | None = None,
    eku: tuple | None = (ExtendedKeyUsageOID.SERVER_AUTH,),
    ca: bool = False,
) -> tuple[x509.Certificate, object]:
    key = key or rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=ca)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def facts(cert):
    return describe_certificate(der(cert))


def verdict(cert, target="rdp.example.test", now=NOW, raw=None):
    """The classifier's verdicts on a certificate (validity at now, name match; no trust)."""
    f = describe_certificate(raw if raw is not None else der(cert))
    return judge_certificate(f, (f,), source="tls", target=target, roots=None, now=now)


def test_valid_self_signed_certificate():
    cert, _ = make_cert(dns=("rdp.example.test",))
    f = facts(cert)
    assert f.subject == "CN=rdp.example.test" and f.issuer == f.subject
    assert f.subject_cn == "rdp.example.test" and f.san_dns == ("rdp.example.test",)
    assert f.serial == "1234abcd"
    assert f.not_after == (NOW + timedelta(days=90)).isoformat()
    v = verdict(cert)
    assert v.days_left == 90 and v.expired is False and v.not_yet_valid is False
    assert f.self_signed is True
    assert (f.key_type, f.key_bits) == ("RSA", 2048)
    assert f.signature_hash == "sha256" and f.signature_algorithm_oid == "1.2.840.113549.1.1.11"
    assert f.eku == ("serverAuth",) and f.server_auth is True
    assert v.name_match is True and v.target_is_ip is False
    sha1 = hashlib.sha1(der(cert)).hexdigest()
    assert f.sha1_thumbprint == sha1.upper() and len(f.sha1_thumbprint) == 40
    assert f.sha1_thumbprint_dialog.replace(" ", "") == sha1
    assert len(f.sha1_thumbprint_dialog.split(" ")) == 20
    assert f.sha256_fingerprint == hashlib.sha256(der(cert)).hexdigest()
    assert f.notes == ()
    json.dumps(f.to_dict())


def test_expired_and_not_yet_valid():
    expired, _ = make_cert(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=3))
    f = verdict(expired)
    assert f.expired is True and f.not_yet_valid is False and f.days_left == -3
    early, _ = make_cert(not_before=NOW + timedelta(days=2), not_after=NOW + timedelta(days=300))
    f = verdict(early)
    assert f.not_yet_valid is True and f.expired is False
    # the same certificate judged at another moment (e.g. a capture's time)
    assert verdict(early, now=NOW + timedelta(days=5)).not_yet_valid is False


def test_name_mismatch_against_san_and_cn_fallback():
    cert, _ = make_cert(cn="other.example.test", dns=("other.example.test", "alt.example.test"))
    f = verdict(cert)
    assert f.name_match is False and "alt.example.test" in f.name_match_reason
    assert verdict(cert, target="ALT.example.test.").name_match is True
    no_san, _ = make_cert(cn="WIN-HOST01")
    assert verdict(no_san, target="win-host01").name_match is True
    assert "no DNS SAN" in verdict(no_san, target="win-host01").name_match_reason
    assert verdict(no_san, target="win-host02").name_match is False
    assert verdict(no_san, target=None).name_match is None


def test_ip_literal_target():
    cert, _ = make_cert(dns=("rdp.example.test",))
    f = verdict(cert, target="192.0.2.10")
    assert f.target_is_ip is True and f.name_match is False
    assert "IP address literal" in f.name_match_reason
    with_ip, _ = make_cert(dns=("rdp.example.test",), ips=("192.0.2.10", "2001:db8::1"))
    assert verdict(with_ip, target="192.0.2.10").name_match is True
    assert verdict(with_ip, target="[2001:db8::1]").name_match is True
    assert verdict(with_ip, target="192.0.2.11").name_match is False
    cn_ip, _ = make_cert(cn="192.0.2.10")
    f = verdict(cn_ip, target="192.0.2.10")
    assert f.name_match is None and "subject CN" in f.name_match_reason


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("*.example.test", "rdp.example.test", True),
        ("*.example.test", "a.b.example.test", False),
        ("*.example.test", "example.test", False),
        ("*.test", "example.test", False),
        ("r*.example.test", "rdp.example.test", False),
        ("rdp.*.test", "rdp.example.test", False),
    ],
)
def test_wildcards_rfc6125(pattern, host, expected):
    assert match_name(host, (pattern,), (), None)[0] is expected
    if expected:
        assert verdict(make_cert(dns=(pattern,))[0], target=host).name_match is True


def test_weak_key_and_ec_key():
    weak, _ = make_cert(key=rsa_key(1024))
    assert (facts(weak).key_type, facts(weak).key_bits) == ("RSA", 1024)
    ec_cert, _ = make_cert(key=ec.generate_private_key(ec.SECP256R1()))
    assert facts(ec_cert).key_type == "EC secp256r1" and facts(ec_cert).key_bits == 256


def test_eku_variants():
    client_only, _ = make_cert(eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    f = facts(client_only)
    assert f.eku == ("clientAuth",) and f.server_auth is False
    none, _ = make_cert(eku=None)
    assert facts(none).eku is None and facts(none).server_auth is None
    rda = x509.ObjectIdentifier("1.3.6.1.4.1.311.54.1.2")
    remote_desktop, _ = make_cert(eku=(rda, x509.ObjectIdentifier("1.2.3.4")))
    f = facts(remote_desktop)
    assert f.eku == ("remoteDesktopAuthentication", "1.2.3.4") and f.server_auth is True


def test_ca_issued_certificate_is_not_self_signed_and_trust_with_ca_file(tmp_path):
    ca, ca_key = make_cert(cn="Test Root CA", eku=None, ca=True, key=rsa_key(3072))
    leaf, _ = make_cert(dns=("rdp.example.test",), issuer=(ca.subject, ca_key))
    assert facts(leaf).self_signed is False
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    ok = verify_chain(
        [der(leaf)], roots=load_trust_roots(str(ca_file)), hostname="rdp.example.test", now=NOW
    )
    assert ok.trusted is True, ok.reason
    wrong = verify_chain(
        [der(leaf)], roots=load_trust_roots(str(ca_file)), hostname="other.test", now=NOW
    )
    assert wrong.trusted is False
    later = verify_chain(
        [der(leaf)],
        roots=load_trust_roots(str(ca_file)),
        hostname=None,
        now=NOW + timedelta(days=400),
    )
    assert later.trusted is False
    trust_only = verify_chain(
        [der(leaf)], roots=load_trust_roots(str(ca_file)), hostname=None, now=NOW
    )
    assert trust_only.trusted is True and "name not checked" in trust_only.reason


def test_self_signed_is_untrusted_by_the_system_store():
    cert, _ = make_cert(dns=("rdp.example.test",))
    result = verify_chain(
        [der(cert)], roots=load_trust_roots(), hostname="rdp.example.test", now=NOW
    )
    assert result.trusted is False and result.reason
    assert verify_chain([], roots=load_trust_roots(), hostname=None, now=NOW).trusted is False
    assert (
        verify_chain([b"junk"], roots=load_trust_roots(), hostname=None, now=NOW).trusted is False
    )


def test_issuer_equals_subject_but_other_key_is_not_self_signed():
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rdp.example.test")])
    forged, _ = make_cert(issuer=(name, other))
    f = facts(forged)
    assert f.self_signed is False and any("does not verify" in n for n in f.notes)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_sha1_signed_certificate_made_by_openssl(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.der"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha1", "-nodes", "-keyout", str(key),
         "-outform", "DER", "-out", str(crt), "-subj", "/CN=WIN-SHA1", "-days", "30"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    f = describe_certificate(crt.read_bytes())
    v = verdict(None, target="WIN-SHA1", now=datetime.now(UTC), raw=crt.read_bytes())
    assert f.signature_hash == "sha1" and f.self_signed is True and v.name_match is True
    assert f.sha1_thumbprint == hashlib.sha1(crt.read_bytes()).hexdigest().upper()


def test_recorded_windows_certificates():
    seen = 0
    for vector in VECTORS:
        tls = vector["facts"].get("decoded", {}).get("tls_server")
        if not tls:
            continue
        for recorded in tls["certificates"]:
            raw = bytes.fromhex(recorded["der_hex"])
            f = describe_certificate(raw)
            v = verdict(None, target="192.168.1.150", raw=raw)
            assert f.subject == recorded["subject"] and f.self_signed is True
            assert f.sha1_thumbprint.lower() == recorded["sha1"]
            assert f.key_bits == recorded["key_bits"] and f.server_auth is True
            assert f.serial == recorded["serial"][2:]
            assert v.target_is_ip is True and v.name_match is False
            seen += 1
    assert seen == 3


def test_unsupported_key_oid_is_reported_not_raised():
    cert, _ = make_cert()
    raw = der(cert)
    rsa_oid = bytes.fromhex("06092a864886f70d010101")
    assert raw.count(rsa_oid) == 1
    odd = raw.replace(rsa_oid, bytes.fromhex("06092a864886f70d010104"))  # md5WithRSA as key OID
    f = describe_certificate(odd)
    assert f.key_type == "RSA" and f.key_bits == 2048
    assert any("1.2.840.113549.1.1.4" in n for n in f.notes)


def test_hostile_input_raises_only_protocol_error():
    rng = random.Random(11)
    with pytest.raises(ProtocolError):
        describe_certificate(b"")
    base = der(make_cert(dns=("rdp.example.test",), ips=("192.0.2.1",))[0])
    for cut in range(0, len(base), 37):
        try:
            describe_certificate(base[:cut])
        except ProtocolError:
            pass
    parsed = 0
    for _ in range(1000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            json.dumps(describe_certificate(bytes(data)).to_dict())
            parsed += 1
        except ProtocolError:
            pass
    assert parsed > 0


def test_untrusted_verdict_names_the_missing_issuer_and_the_store(tmp_path):
    ca, ca_key = make_cert(cn="Corp Issuing CA", eku=None, ca=True, key=rsa_key(3072))
    other, _ = make_cert(cn="Some Other Root", eku=None, ca=True, key=rsa_key(3072))
    leaf, _ = make_cert(dns=("rdp.example.test",), issuer=(ca.subject, ca_key))
    ca_file = tmp_path / "other.pem"
    ca_file.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    roots = load_trust_roots(str(ca_file))
    result = verify_chain([der(leaf)], roots=roots, hostname=None, now=NOW)
    assert result.trusted is False
    assert result.verdict == (
        f"its issuer CN=Corp Issuing CA is not in the --ca-file {ca_file}, nor sent by the server"
    )
    assert result.to_dict()["store"] == f"--ca-file {ca_file}"
    alone, _ = make_cert(dns=("rdp.example.test",))
    self_signed = verify_chain([der(alone)], roots=roots, hostname=None, now=NOW)
    assert self_signed.verdict.startswith("it is self-signed and not itself in the --ca-file")


def test_windows_intermediates_complete_the_chain(monkeypatch):
    """On Windows the CA (intermediates) store is read with ssl.enum_certificates: simulated
    here with real certificates, since the function exists only on Windows."""
    from rdprobe import trust_store

    root, root_key = make_cert(cn="Corp Root", eku=None, ca=True, key=rsa_key(3072))
    inter, inter_key = make_cert(
        cn="Corp Issuing CA", eku=None, ca=True, issuer=(root.subject, root_key),
        key=rsa_key(3072),
    )  # fmt: skip
    leaf, _ = make_cert(dns=("rdp.example.test",), issuer=(inter.subject, inter_key))
    stores = {"ROOT": [der(root)], "CA": [der(inter)]}
    asked: list[str] = []

    def enum_certificates(name: str):
        asked.append(name)
        return [(data, "x509_asn", True) for data in stores[name]]

    monkeypatch.setattr(trust_store.ssl, "enum_certificates", enum_certificates, raising=False)
    trust_store._load.cache_clear()
    try:
        roots = trust_store.load_trust_roots()
        assert set(asked) == {"ROOT", "CA"} and "Intermediate" in roots.source
        result = verify_chain([der(leaf)], roots=roots, hostname=None, now=NOW)
        assert result.trusted is True, result.reason
        stores["CA"] = []  # without the intermediate the leaf alone does not chain
        trust_store._load.cache_clear()
        missing = verify_chain(
            [der(leaf)], roots=trust_store.load_trust_roots(), hostname=None, now=NOW
        )
        assert missing.trusted is False and "CN=Corp Issuing CA is not in" in missing.verdict
    finally:
        trust_store._load.cache_clear()
