"""Loading the trust roots a checking client uses (I/O, for the live and pcap adapters).

--ca-file PATH, else Windows' ROOT store (with the CA store's intermediates), else OpenSSL's
default CA file; loaded once per path and
cached. Analysis gets the result as a :class:`~rdprobe.analysis.trust.TrustRoots` value and never
reads a file itself.
"""

from __future__ import annotations

import functools
import ssl

from cryptography import x509

from rdprobe.analysis.trust import TrustRoots, parse_bundle


def load_trust_roots(ca_file: str | None = None) -> TrustRoots:
    """The roots from *ca_file*, else the system store; a read error is kept, not raised (and
    not cached: the next call tries again, e.g. once file descriptors are free)."""
    try:
        return _load(ca_file)
    except (OSError, ValueError) as exc:
        return TrustRoots((), f"--ca-file {ca_file}" if ca_file else "system store", str(exc))


@functools.lru_cache(maxsize=4)
def _load(ca_file: str | None) -> TrustRoots:
    if ca_file is not None:
        with open(ca_file, "rb") as handle:
            return TrustRoots(parse_bundle(handle.read()), f"--ca-file {ca_file}")
    if hasattr(ssl, "enum_certificates"):  # Windows
        # the CA store's intermediates complete paths (never as anchors): a server that sends
        # only its leaf chains here as it does for mstsc
        return TrustRoots(
            _windows_store("ROOT"),
            "Windows certificate stores (Trusted Root, Intermediate Certification Authorities)",
            intermediates=_windows_store("CA"),
        )
    paths = ssl.get_default_verify_paths()
    path = paths.cafile or paths.openssl_cafile
    with open(path, "rb") as handle:
        return TrustRoots(parse_bundle(handle.read()), f"system store ({path})")


def _windows_store(name: str) -> tuple[x509.Certificate, ...]:
    """The certificates of one Windows system store ("ROOT", "CA"); undecodable ones skipped."""
    certs = []
    for data, encoding, _trust in ssl.enum_certificates(name):  # type: ignore[attr-defined]
        if encoding == "x509_asn":
            try:
                certs.append(x509.load_der_x509_certificate(data))
            except ValueError:
                continue
    return tuple(certs)
