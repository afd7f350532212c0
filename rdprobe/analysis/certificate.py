"""Facts about a server certificate; whether a checking client trusts its chain is in ``trust``.

describe_certificate() never raises on an odd but loadable certificate (Windows Terminal Services
licensing certificates with key OIDs cryptography rejects, malformed extensions): what cannot be
read is None and explained in `notes`. Only bytes that are no X.509 certificate at all raise
ProtocolError. Name matching follows RFC 6125 §6.4 (wildcard = whole left-most label only).

Thumbprints: `sha1_thumbprint` is 40 UPPERCASE hex digits without separators, as PowerShell's
`Cert:` drive and Win32_TSGeneralSetting.SSLCertificateSHA1Hash (the RDP listener binding) show
it; `sha1_thumbprint_dialog` is lowercase byte pairs separated by spaces, as the Windows
certificate dialog's Thumbprint field shows it (newer Windows drop the spaces there). Windows
compares thumbprints case-insensitively.
"""

from __future__ import annotations

import hashlib
import ipaddress
import warnings
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rdprobe.analysis.facts import Certificate, CertificateFacts, CertificateUnreadable
from rdprobe.protocol import der
from rdprobe.protocol.errors import ProtocolError

_Ext = TypeVar("_Ext", bound=x509.ExtensionType)

OID_REMOTE_DESKTOP_AUTH = "1.3.6.1.4.1.311.54.1.2"
EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING.dotted_string: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION.dotted_string: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING.dotted_string: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING.dotted_string: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string: "anyExtendedKeyUsage",
    OID_REMOTE_DESKTOP_AUTH: "remoteDesktopAuthentication",
}
SERVER_AUTH_EKUS = {"serverAuth", "anyExtendedKeyUsage", "remoteDesktopAuthentication"}
SIGNATURE_HASH_BY_OID = {  # for algorithms cryptography will not name
    "1.2.840.113549.1.1.2": "md2",
    "1.2.840.113549.1.1.4": "md5",
    "1.2.840.113549.1.1.5": "sha1",
    "1.3.14.3.2.29": "sha1",
    "1.3.14.3.2.15": "sha1",
    "1.2.840.10040.4.3": "sha1",
    "1.2.840.10045.4.1": "sha1",
}


def describe_certificate(der_bytes: bytes) -> CertificateFacts:
    """Everything rdprobe reports about one DER certificate: what it says, no verdict (validity
    at a time and the name match are judged by ``rdprobe.analysis.certificate_verdict``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # e.g. serial <= 0
        return _describe(der_bytes)


def describe_chain(chain_der: tuple[bytes, ...] | list[bytes]) -> tuple[Certificate, ...]:
    """Each certificate as sent, leaf first; bytes that are no certificate say why."""
    out: list[Certificate] = []
    for data in chain_der:
        try:
            out.append(describe_certificate(data))
        except ProtocolError as exc:
            out.append(CertificateUnreadable(str(exc), data))
        except Exception as exc:  # cryptography's InvalidVersion and friends (issue 14)
            text = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
            out.append(CertificateUnreadable(reason, data))
    return tuple(out)


def _describe(der_bytes: bytes) -> CertificateFacts:
    try:
        cert = x509.load_der_x509_certificate(der_bytes)
    except Exception as exc:  # ValueError, InvalidVersion (not a ValueError), ...
        raise ProtocolError(f"not an X.509 certificate: {type(exc).__name__}: {exc}") from None
    notes: list[str] = []

    def attempt(what, fn, default=None):
        # cryptography parses lazily and raises many kinds (ValueError, KeyError for an
        # unknown string tag, UnsupportedAlgorithm, …) on odd certificates: note, go on.
        try:
            return fn()
        except Exception as exc:
            notes.append(f"{what}: {type(exc).__name__}: {exc}")
            return default

    subject = attempt("subject", lambda: cert.subject.rfc4514_string())
    issuer = attempt("issuer", lambda: cert.issuer.rfc4514_string())
    cn = attempt("subject CN", lambda: _common_name(cert))
    extensions = attempt("extensions", lambda: cert.extensions)
    san = None if extensions is None else _extension(extensions, x509.SubjectAlternativeName)
    san_dns: tuple[str, ...] = ()
    san_ip: tuple[str, ...] = ()
    if san is not None:
        san_dns = tuple(san.get_values_for_type(x509.DNSName))
        san_ip = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    usage = None if extensions is None else _extension(extensions, x509.ExtendedKeyUsage)
    eku = None
    if usage is not None:
        eku = tuple(EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in usage)
    not_before = attempt("notBefore", lambda: cert.not_valid_before_utc)
    not_after = attempt("notAfter", lambda: cert.not_valid_after_utc)
    key_type, key_bits = attempt(
        "public key", lambda: _key_facts(cert, der_bytes, notes), (None, None)
    )
    sig_oid = attempt("signature algorithm", lambda: cert.signature_algorithm_oid.dotted_string)
    sig_hash = attempt("signature hash", lambda: _hash_name(cert))
    if sig_hash is None and sig_oid in SIGNATURE_HASH_BY_OID:
        sig_hash = SIGNATURE_HASH_BY_OID[sig_oid]
    sha1 = hashlib.sha1(der_bytes).hexdigest()
    return CertificateFacts(
        subject=subject,
        issuer=issuer,
        subject_cn=cn,
        san_dns=san_dns,
        san_ip=san_ip,
        serial=attempt("serial", lambda: f"{cert.serial_number:x}"),
        not_before=None if not_before is None else not_before.isoformat(),
        not_after=None if not_after is None else not_after.isoformat(),
        self_signed=attempt(
            "self-signed check", lambda: _self_signed(cert, subject, issuer, notes)
        ),
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm_oid=sig_oid,
        signature_hash=sig_hash,
        eku=eku,
        server_auth=None if eku is None else bool(SERVER_AUTH_EKUS & set(eku)),
        sha1_thumbprint=sha1.upper(),
        sha1_thumbprint_dialog=" ".join(sha1[i : i + 2] for i in range(0, 40, 2)),
        sha256_fingerprint=hashlib.sha256(der_bytes).hexdigest(),
        notes=tuple(notes),
        der=der_bytes,
        key_exponent=attempt("public exponent", lambda: _rsa_exponent(cert)),
    )


def _rsa_exponent(cert: x509.Certificate) -> int | None:
    key = cert.public_key()
    return key.public_numbers().e if isinstance(key, rsa.RSAPublicKey) else None


def match_name(
    target: str | None, san_dns: tuple[str, ...], san_ip: tuple[str, ...], cn: str | None
) -> tuple[bool | None, str, bool | None]:
    """(match, reason, target_is_ip) for the name the user typed (RFC 6125 §6.4)."""
    if not target:
        return None, "no target name given", None
    host = target.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        address = None
    if address is not None:
        ips = [ipaddress.ip_address(i) for i in san_ip]
        if address in ips:
            return True, f"target is the IP address literal {address}, one of its IP SANs", True
        literal = f"target is the IP address literal {address}"
        if not san_ip and cn == str(address):
            why = "it is only the subject CN (no IP SAN): some clients accept that, strict ones not"
            return None, f"{literal}; {why}", True
        listed = ", ".join(san_ip) if san_ip else "none"
        why = f"certificates name hosts; this one's IP SANs: {listed}. Connect by its DNS name"
        return False, f"{literal}, not a name; {why}", True
    wanted = _ascii_host(host)
    if san_dns:
        for pattern in san_dns:
            if _dns_match(pattern, wanted):
                return True, f"{target} matches the DNS SAN {pattern}", False
        return False, f"{target} matches none of the DNS SANs: {', '.join(san_dns)}", False
    if cn is not None and _dns_match(cn, wanted):
        return True, f"{target} matches the subject CN {cn} (the certificate has no DNS SAN)", False
    return False, f"{target} does not match the subject CN {cn} (no DNS SAN)", False


def _dns_match(pattern: str, host: str) -> bool:
    pattern = _ascii_host(pattern.strip().rstrip("."))
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False
    label, _, rest = host.partition(".")
    return bool(label) and rest == suffix


def _ascii_host(name: str) -> str:
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return name.lower()


def _common_name(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _extension(extensions: x509.Extensions, kind: type[_Ext]) -> _Ext | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _hash_name(cert: x509.Certificate) -> str | None:
    algorithm = cert.signature_hash_algorithm
    return None if algorithm is None else algorithm.name


def _key_facts(cert: x509.Certificate, der_bytes: bytes, notes: list[str]):
    """(key type, bits); falls back to reading SubjectPublicKeyInfo by hand."""
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        notes.append(f"public key: {exc}")
        return _key_from_spki(der_bytes, notes)
    return _describe_key(key)


def _describe_key(key: object) -> tuple[str, int | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def _key_from_spki(der_bytes: bytes, notes: list[str]) -> tuple[str | None, int | None]:
    """The SubjectPublicKeyInfo's key read as PKCS#1 (``der.subject_public_key_info``)."""
    try:
        oid, key_bits = der.subject_public_key_info(der_bytes)
    except ProtocolError as exc:
        notes.append(f"SubjectPublicKeyInfo unreadable: {exc}")
        return None, None
    try:
        key = serialization.load_der_public_key(key_bits)
    except (ValueError, UnsupportedAlgorithm):
        notes.append(f"key algorithm {oid} not readable")
        return f"unknown ({oid})", None
    kind, size = _describe_key(key)
    notes.append(f"key algorithm {oid} read as a PKCS#1 {kind} key")
    return kind, size


def _self_signed(cert: x509.Certificate, subject, issuer, notes: list[str]) -> bool | None:
    if subject is None or issuer is None:
        return None
    if cert.subject != cert.issuer:
        return False
    try:
        try:
            cert.verify_directly_issued_by(cert)
        except UnsupportedAlgorithm:  # e.g. SHA-1, refused there but fine for a plain verify
            _verify_own_signature(cert)
    except InvalidSignature:
        notes.append("issuer equals subject, but the signature does not verify with its own key")
        return False
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        notes.append(f"issuer equals subject; signature not checked ({exc})")
    return True


def _verify_own_signature(cert: x509.Certificate) -> None:
    key = cert.public_key()
    algorithm = cert.signature_hash_algorithm
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
    else:
        raise TypeError("unsupported key or signature algorithm")
