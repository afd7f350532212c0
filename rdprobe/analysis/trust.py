"""Would a client that checks certificates trust a server's TLS chain (leaf first)?

verify_chain() judges the chain with cryptography's RFC 5280 path validation against the
:class:`TrustRoots` it is given, at the time it is given. Analysis reads no file: the adapters load
the roots (``rdprobe.trust_store``: --ca-file, else the system store). The host name is checked
(RFC 6125 §6.4) only when the leaf has a subjectAltName; otherwise name matching is left to
``rdprobe.analysis.certificate.match_name``.
"""

from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cryptography loads when a chain is judged, not with the classifier
    from cryptography import x509


@dataclass(frozen=True)
class TrustRoots:
    """The certificates a checking client trusts, and where they came from."""

    certificates: tuple[x509.Certificate, ...]
    source: str  #: "--ca-file PATH", "system store (PATH)", ...
    error: str | None = None  #: why the store could not be read (then nothing is trusted)
    #: certificates that may complete a path but are no trust anchor (Windows' Intermediate
    #: Certification Authorities store: a server that sends only its leaf still chains there)
    intermediates: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class TrustResult:
    trusted: bool
    reason: str  #: the verifier's own words
    verdict: str = ""  #: the same in plain words: what is missing, from which store
    store: str = ""  #: the trust store that was used

    def to_dict(self) -> dict[str, object]:
        return {
            "trusted": self.trusted,
            "reason": self.reason,
            "verdict": self.verdict or self.reason,
            "store": self.store,
        }


def plain_verdict(reason: str, issuer: str | None, self_signed: bool, store: str) -> str:
    """The verifier's reason as an admin reads it: which issuer is missing from which store."""
    low = reason.lower()
    if "candidates exhausted" in low or "no issuer" in low or "unable to get" in low:
        if self_signed:
            return f"it is self-signed and not itself in the {store}"
        return f"its issuer {issuer or '(unnamed)'} is not in the {store}, nor sent by the server"
    if "expired" in low or "not yet valid" in low or "validity" in low:
        return f"a certificate in the chain is outside its validity period ({reason})"
    return f"not trusted by the {store}: {reason}"


#: The verifier's Store of each TrustRoots seen, by identity (the roots kept alive with it):
#: building one from the ~150 certificates of a system store costs more than a verification,
#: and a sweep judges every chain against the same roots.
_STORES: dict[int, tuple[TrustRoots, object]] = {}


def _store(roots: TrustRoots) -> x509.verification.Store:
    from cryptography.x509 import verification as v

    hit = _STORES.get(id(roots))
    if hit is None or hit[0] is not roots:
        if len(_STORES) >= 8:
            _STORES.clear()
        hit = _STORES[id(roots)] = (roots, v.Store(list(roots.certificates)))
    return hit[1]  # type: ignore[return-value]


def verify_chain(
    chain: list[bytes], *, roots: TrustRoots, hostname: str | None, now: datetime
) -> TrustResult:
    """Would a client that checks certificates accept *chain* (leaf first)?

    Uses cryptography's RFC 5280 / CA-B-Forum-style verifier with *roots*.
    When the leaf has no subjectAltName (Windows' own RDP certificates have none) or no
    *hostname* is given, only the chain to a trusted root is judged, the name is left to
    match_name(). The verifier is stricter than Windows CryptoAPI in places, so the reason text
    is worth showing as is.
    """
    from cryptography import x509
    from cryptography.x509 import verification as v

    if not chain:
        return TrustResult(False, "the server sent no certificate")
    try:
        certs = [x509.load_der_x509_certificate(c) for c in chain]
    except Exception as exc:  # ValueError, InvalidVersion, ...: every loader fault (issue 14)
        return TrustResult(False, f"certificate does not parse: {exc}")
    where = roots.source
    if roots.error is not None:
        return TrustResult(False, f"cannot read trust store: {roots.error}", store=where)
    if not roots.certificates:
        return TrustResult(False, "the trust store holds no usable certificate", store=where)
    builder = v.PolicyBuilder().store(_store(roots)).time(now.astimezone(UTC))
    intermediates = [*certs[1:], *roots.intermediates]  # offered for path building, not trusted
    subject = _verifier_subject(hostname) if _has_san(certs[0]) else None
    try:
        if subject is not None:
            builder.build_server_verifier(subject).verify(certs[0], intermediates)
            why = f"chains to a trusted root and is valid for {hostname}"
            return TrustResult(True, why, why, where)
        trust_only = builder.extension_policies(
            ca_policy=v.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=v.ExtensionPolicy.permit_all(),
        ).build_client_verifier()
        trust_only.verify(certs[0], intermediates)
    except v.VerificationError as exc:
        text = " ".join(str(exc).split()).split(" (encountered processing")[0]
        top = certs[-1]
        try:  # cryptography parses names lazily: a broken issuer raises only here
            issuer, self_issued = top.issuer.rfc4514_string(), top.issuer == top.subject
        except Exception:
            issuer, self_issued = "an issuer name that does not parse", False
        plain = plain_verdict(text, issuer, self_issued, where)
        return TrustResult(False, text, plain, where)
    except Exception as exc:  # ValueError, TypeError, UnsupportedAlgorithm, ...
        return TrustResult(False, f"cannot verify: {type(exc).__name__}: {exc}", store=where)
    why = "no host name given" if not hostname else "the certificate has no subjectAltName"
    text = f"chains to a trusted root (name not checked here: {why})"
    return TrustResult(True, text, text, where)


def _has_san(leaf: x509.Certificate) -> bool:
    from cryptography import x509

    try:
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return True


def _verifier_subject(hostname: str | None):
    from cryptography.x509 import verification as v

    from rdprobe.analysis.certificate import _ascii_host

    if not hostname:
        return None
    host = hostname.strip("[]").rstrip(".")
    try:
        return v.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return v.DNSName(_ascii_host(host))


def parse_bundle(data: bytes) -> tuple[x509.Certificate, ...]:
    """PEM bundle (or one DER certificate); certificates that fail to load are skipped."""
    from cryptography import x509

    marker = b"-----BEGIN CERTIFICATE-----"
    if marker not in data:
        return (x509.load_der_x509_certificate(data),)
    certs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. non-positive serials in old roots
        for block in data.split(marker)[1:]:
            try:
                certs.append(x509.load_pem_x509_certificate(marker + block))
            except ValueError:
                continue
    return tuple(certs)
