"""The certificate verdicts, judged once, in the classifier: validity at ``now``, days left, the
name match against what the client connected by (RFC 6125 §6.4) and trust in the roots given.

Certificate facts (``rdprobe.analysis.facts.CertificateFacts``) record only what the certificate
says; a capture judged years later gets the verdicts of that later time, and the findings and the
report's ``certificate`` object always agree because both come from here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from rdprobe.analysis.facts import Certificate, CertificateFacts, NameLookup, TlsFacts, leaf_of
from rdprobe.analysis.trust import TrustRoots, verify_chain


@dataclass(frozen=True)
class CertificateVerdict:
    """What a checking client concludes about the leaf certificate at one time."""

    source: str  #: "tls" (the handshake) or "tls.fallback" (the hand-built TLS 1.0 hello)
    subject: str | None
    not_before: str | None
    not_after: str | None
    days_left: int | None
    expired: bool | None
    not_yet_valid: bool | None
    target: str | None
    target_is_ip: bool | None
    name_match: bool | None
    name_match_reason: str
    trusted: bool | None  #: None when no trust roots were given or the bytes were not kept
    trust_reason: str
    trust_verdict: str = ""  #: the reason in plain words: which issuer is missing from where
    trust_store: str = ""  #: the trust roots judged against
    #: when the name does not match: does one of the certificate's DNS names resolve to the
    #: address probed (None: not looked up, or nothing resolved)
    names_point_here: bool | None = None
    names_point_reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time of the facts as an aware datetime (UTC when it carries no zone)."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True


def judged_chain(tls: TlsFacts) -> tuple[str, tuple[Certificate, ...]]:
    """The chain whose leaf is judged: the handshake's, or after a failed handshake the one the
    fallback hello brought back (none when there was no fallback)."""
    if tls.error:
        return "tls.fallback", tls.fallback.chain if tls.fallback else ()
    return "tls", tls.chain


def _same_address(a: str, b: str) -> bool:
    try:
        x, y = (ipaddress.ip_address(v.strip("[]").split("%")[0]) for v in (a, b))
    except ValueError:
        return a == b
    if isinstance(x, ipaddress.IPv6Address) and x.ipv4_mapped is not None:
        x = x.ipv4_mapped
    if isinstance(y, ipaddress.IPv6Address) and y.ipv4_mapped is not None:
        y = y.ipv4_mapped
    return x == y


def names_point_at(lookups: tuple[NameLookup, ...], address: str | None) -> tuple[bool | None, str]:
    """Whether one of the certificate's resolved names points at ``address`` (the one probed):
    False when names resolved but all elsewhere (a certificate copied from another server, or a
    DNS record pointing at the wrong host); None when nothing resolved or nothing to compare."""
    if not lookups or address is None:
        return None, "the certificate's names were not looked up"
    resolved = [n for n in lookups if n.addresses]
    here = [n.name for n in resolved if any(_same_address(a, address) for a in n.addresses)]
    if here:
        return True, f"{', '.join(here)} resolves to {address}, the address probed"
    failed = "; ".join(f"{n.name}: {n.error or 'no address'}" for n in lookups if not n.addresses)
    if not resolved:
        return None, f"none of the certificate's names resolved ({failed})"
    where = "; ".join(f"{n.name} -> {', '.join(n.addresses)}" for n in resolved)
    tail = f"; not resolved: {failed}" if failed else ""
    return False, f"the certificate's names point elsewhere ({where}), none at {address}{tail}"


def judge_certificate(
    leaf: CertificateFacts,
    chain: tuple[Certificate, ...],
    *,
    source: str,
    target: str | None,
    roots: TrustRoots | None,
    now: datetime,
    lookups: tuple[NameLookup, ...] = (),
    address: str | None = None,
) -> CertificateVerdict:
    now = now.astimezone(UTC)
    not_before, not_after = parse_time(leaf.not_before), parse_time(leaf.not_after)
    from rdprobe.analysis.certificate import match_name  # cryptography: only with a certificate

    match, reason, is_ip = match_name(target, leaf.san_dns, leaf.san_ip, leaf.subject_cn)
    ders = [c.der for c in chain]
    plain, store = "", "" if roots is None else roots.source
    here, here_why = (
        names_point_at(lookups, address) if match is False else (None, "the name matches")
    )
    if roots is None:
        trusted, why = None, "no trust roots given"
    elif not all(ders):
        trusted, why = None, "the certificates' bytes were not kept"
    else:
        hostname = None if not target or _is_ip(target) else target
        result = verify_chain(ders, roots=roots, hostname=hostname, now=now)
        trusted, why, plain = result.trusted, result.reason, result.verdict
    return CertificateVerdict(
        source=source,
        subject=leaf.subject,
        not_before=leaf.not_before,
        not_after=leaf.not_after,
        days_left=None if not_after is None else (not_after - now).days,
        expired=None if not_after is None else now > not_after,
        not_yet_valid=None if not_before is None else now < not_before,
        target=target,
        target_is_ip=is_ip,
        name_match=match,
        name_match_reason=reason,
        trusted=trusted,
        trust_reason=why,
        trust_verdict=plain or why,
        trust_store=store,
        names_point_here=here,
        names_point_reason=here_why,
    )


def tls_certificate_verdict(
    tls: TlsFacts, *, roots: TrustRoots | None, now: datetime, address: str | None = None
) -> CertificateVerdict | None:
    """The verdict on the leaf of the judged chain of a TLS stage, or None without a leaf;
    ``address`` is the one probed (the server's in a capture).

    The last verdict is kept: classify asks for it twice per report (the TLS judge's findings,
    the report's certificate block), with the very same objects (compared by identity, held
    so that no identity is reused)."""
    key = (tls, roots, now, address)
    last = _LAST_VERDICT[0]
    if last is not None and all(a is b for a, b in zip(last[0], key, strict=True)):
        return last[1]
    source, chain = judged_chain(tls)
    leaf = leaf_of(chain)
    verdict = None
    if leaf is not None:
        verdict = judge_certificate(
            leaf, chain, source=source, target=tls.server_name, roots=roots, now=now,
            lookups=tls.name_lookups, address=address,
        )  # fmt: skip
    _LAST_VERDICT[0] = (key, verdict)
    return verdict


_LAST_VERDICT: list[tuple[tuple[object, ...], CertificateVerdict | None] | None] = [None]
