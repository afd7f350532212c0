"""What a sweep reuses between certificate verdicts (rdprobe.analysis.trust's Store per
TrustRoots, the last TLS certificate verdict) never changes a verdict: other roots, another
time or another chain are judged afresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certgen import self_signed
from cryptography.hazmat.primitives.serialization import Encoding

from rdprobe.analysis import trust
from rdprobe.analysis.certificate import describe_chain
from rdprobe.analysis.certificate_verdict import tls_certificate_verdict
from rdprobe.analysis.facts import TlsFacts
from rdprobe.analysis.trust import TrustRoots, verify_chain


def _der(cert) -> bytes:
    return cert.public_bytes(Encoding.DER)


def test_store_per_roots_object_and_verdicts_follow_the_roots():
    _key, cert = self_signed("reuse.rdprobe.test")
    _key2, other = self_signed("other.rdprobe.test", serial=2)
    now = datetime.now(UTC)
    trusting = TrustRoots((cert,), "--ca-file a")
    not_trusting = TrustRoots((other,), "--ca-file b")
    for _ in range(2):  # the second round uses the kept Stores
        assert verify_chain([_der(cert)], roots=trusting, hostname=None, now=now).trusted
        assert not verify_chain([_der(cert)], roots=not_trusting, hostname=None, now=now).trusted
    assert trust._STORES[id(trusting)][0] is trusting
    # an equal but distinct TrustRoots gets its own Store, and the same verdict
    again = TrustRoots((cert,), "--ca-file a")
    assert verify_chain([_der(cert)], roots=again, hostname=None, now=now).trusted
    assert trust._STORES[id(again)][0] is again


def test_last_verdict_is_reused_only_for_the_same_objects():
    _key, cert = self_signed("reuse.rdprobe.test", days=30)
    tls = TlsFacts("SSL", "SSL", "TLSv1.2", "X", 256, None, describe_chain([_der(cert)]), "srv")
    roots = TrustRoots((cert,), "--ca-file a")
    now = datetime.now(UTC)
    first = tls_certificate_verdict(tls, roots=roots, now=now, address="127.0.0.1")
    assert first is not None and first.expired is False and first.trusted is True
    assert tls_certificate_verdict(tls, roots=roots, now=now, address="127.0.0.1") is first
    later = tls_certificate_verdict(
        tls, roots=roots, now=now + timedelta(days=60), address="127.0.0.1"
    )
    assert later is not first and later.expired is True
    other_roots = tls_certificate_verdict(
        tls, roots=TrustRoots((), "none"), now=now, address="127.0.0.1"
    )
    assert other_roots is not None and other_roots.trusted is False
    no_chain = TlsFacts("SSL", "SSL", None, None, None, "handshake failure", (), "srv")
    assert tls_certificate_verdict(no_chain, roots=roots, now=now) is None
