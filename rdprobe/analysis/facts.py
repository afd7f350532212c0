"""What each later stage saw on the wire, as typed facts: the classifier's input after the matrix.

One frozen dataclass per stage (TLS with its fallback hello and certificates, TLS versions, NLA,
MCS / Standard RDP Security, RDP-UDP), plus :class:`StageNote` for a stage that produced no facts
(skipped or an internal error) and :class:`RunConfig` for how the probe ran. The live prober
(``rdprobe.live.stages``), the pcap reader (``rdprobe.capture.connection``) and the tests build
these same objects; ``rdprobe.analysis.judges`` reads their attributes.

Facts record what was seen, never a verdict: validity, days left, name match, trust and clock
skew are judged in the classifier at the ``now`` it is given. ``to_dict`` is the JSON form
(docs/json-schema.md, ``stages``); ``from_dict`` reads it back where the facts are plain data.
Adding a stage: one dataclass here (with ``summary`` and ``to_dict``), its name in ``STAGES`` and a
field on :class:`~rdprobe.analysis.observations.TargetObservation`, one producer, one judge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# STAGES, RunConfig and StageNote live in run_facts (no protocol imports: an observation is made
# and judged without loading every stage's facts) and are re-exported here with the rest.
from rdprobe.analysis.encryption_level import (
    EncryptionLevelVerdict,
    MethodOutcome,
    infer_encryption_level,
)
from rdprobe.analysis.run_facts import STAGES as STAGES
from rdprobe.analysis.run_facts import RunConfig as RunConfig
from rdprobe.analysis.run_facts import StageNote as StageNote
from rdprobe.analysis.windows_versions import describe_windows_version
from rdprobe.protocol import gcc_server, mcs, rdpudp, tlsrec
from rdprobe.protocol.ntlm import NegotiateFlags, NtlmChallenge
from rdprobe.protocol.rdpsec import ProprietaryCertificate


def _fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in cls.__dataclass_fields__ if k in d}  # type: ignore[attr-defined]


# -- TLS ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFacts:
    """What one X.509 certificate says (``rdprobe.analysis.certificate.describe_certificate``)."""

    subject: str | None
    issuer: str | None
    subject_cn: str | None
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    serial: str | None
    not_before: str | None
    not_after: str | None
    self_signed: bool | None
    key_type: str | None
    key_bits: int | None
    signature_algorithm_oid: str | None
    signature_hash: str | None
    eku: tuple[str, ...] | None
    """EKU names (dotted OIDs when unnamed); None when the certificate has no EKU extension."""
    server_auth: bool | None
    """serverAuth, anyExtendedKeyUsage or Remote Desktop Authentication present; None = no EKU
    extension, i.e. any purpose."""
    sha1_thumbprint: str
    sha1_thumbprint_dialog: str
    sha256_fingerprint: str
    notes: tuple[str, ...] = ()
    der: bytes = field(default=b"", repr=False, compare=False)
    """The certificate as sent (for the trust check); not part of the JSON form."""
    key_exponent: int | None = None
    """The RSA public exponent (65537 nearly always; 3 or a huge value is worth a look)."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["der"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CertificateFacts:
        kw = _fields(cls, d)
        for k in ("san_dns", "san_ip", "notes"):
            kw[k] = tuple(kw.get(k) or ())
        if kw.get("eku") is not None:
            kw["eku"] = tuple(kw["eku"])
        return cls(**kw)


@dataclass(frozen=True)
class CertificateUnreadable:
    """Bytes in a certificate list that are no X.509 certificate."""

    error: str
    der: bytes = field(default=b"", repr=False, compare=False)
    size: int | None = None  #: of the bytes as sent (from ``der`` when given)
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.der:
            object.__setattr__(self, "size", len(self.der))
            object.__setattr__(self, "sha256", hashlib.sha256(self.der).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.error}
        if self.sha256 is not None:
            out.update(size=self.size, sha256=self.sha256)
        return out


Certificate = CertificateFacts | CertificateUnreadable


def _chain_from(items: Any) -> tuple[Certificate, ...]:
    return tuple(
        CertificateUnreadable(c["error"], size=c.get("size"), sha256=c.get("sha256"))
        if "error" in c and "subject" not in c
        else CertificateFacts.from_dict(c)
        for c in items or ()
    )  # fmt: skip


def _alert_dict(alert: tlsrec.Alert | None) -> dict[str, Any] | None:
    if alert is None:
        return None
    return {
        "level": alert.level,
        "description": alert.description,
        "name": alert.name,
    }


def _alert_from(d: Mapping[str, Any] | None) -> tlsrec.Alert | None:
    return None if d is None else tlsrec.Alert(d["level"], d["description"])


def leaf_of(chain: tuple[Certificate, ...]) -> CertificateFacts | None:
    return chain[0] if chain and isinstance(chain[0], CertificateFacts) else None


@dataclass(frozen=True)
class TlsFallbackFacts:
    """What a hand-built TLS 1.0 ClientHello offering RC4/3DES/AES-CBC got back in clear, on a
    fresh connection, after the local OpenSSL failed the handshake (RFC 2246 §7.4)."""

    version: str | None = None
    cipher: str | None = None
    cipher_code: int | None = None
    alert: tlsrec.Alert | None = None
    server_hello_done: bool = False
    bytes_read: int = 0
    error: str | None = None
    chain: tuple[Certificate, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cipher": self.cipher,
            "cipher_code": None if self.cipher_code is None else f"0x{self.cipher_code:04x}",
            "alert": _alert_dict(self.alert),
            "server_hello_done": self.server_hello_done,
            "bytes_read": self.bytes_read,
            "error": self.error,
            "chain": [c.to_dict() for c in self.chain],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TlsFallbackFacts:
        kw = _fields(cls, d)
        if kw.get("cipher_code") is not None:
            kw["cipher_code"] = int(kw["cipher_code"], 16)
        kw["alert"] = _alert_from(kw.get("alert"))
        kw["chain"] = _chain_from(d.get("chain"))
        return cls(**kw)


@dataclass(frozen=True)
class NameLookup:
    """What one DNS name of the server's certificate resolved to. The live probe looks the names
    up (the --resolve overrides first, at most a few, within the target's deadline) only when the
    certificate does not name the target; a capture has none."""

    name: str
    addresses: tuple[str, ...] = ()
    error: str | None = None
    #: "--resolve" (an override), "dns" (the system resolver), "rfc6761" (localhost / .invalid,
    #: answered without a query) or "not looked up" (lookups limited or no time left)
    via: str = "dns"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addresses": list(self.addresses),
            "error": self.error,
            "via": self.via,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NameLookup:
        return cls(
            str(d.get("name") or ""),
            tuple(d.get("addresses") or ()),
            d.get("error"),
            d.get("via") or "dns",
        )


def alert_text(alert: tlsrec.Alert) -> str:
    """E.g. ``fatal alert protocol_version (70)`` (RFC 8446 §6)."""
    return f"{alert.level_name} alert {alert.name} ({alert.description})"


@dataclass(frozen=True)
class TlsFacts:
    """The TLS handshake after a confirm that selected SSL/HYBRID (MS-RDPBCGR 5.4.5.1)."""

    request: str  #: the matrix label whose confirm the stage reused
    selected: str  #: the selected protocol's name
    version: str | None
    cipher: str | None
    cipher_bits: int | None
    error: str | None  #: the handshake failure (an alert's text), else None
    chain: tuple[Certificate, ...] = ()  #: leaf first, as sent
    #: the name the client connected by (the target typed, or the SNI in a capture)
    server_name: str | None = None
    fallback: TlsFallbackFacts | None = None
    #: the alert the server ended the handshake with (read by OpenSSL live, from the flight in a
    #: capture), else None
    alert: tlsrec.Alert | None = None
    #: the certificate's DNS names resolved, when it does not name the target (live only)
    name_lookups: tuple[NameLookup, ...] = ()

    @property
    def summary(self) -> str:
        leaf = leaf_of(self.chain)
        if self.error:
            text = f"handshake failed: {self.error}"
            if self.alert is not None:
                text = f"handshake failed: the server sent a {alert_text(self.alert)}"
            fb = self.fallback
            if fb is not None and fb.version:
                fb_leaf = leaf_of(fb.chain)
                text += (
                    f"; a TLS 1.0 hello with legacy suites got {fb.version} {fb.cipher}, "
                    f"certificate {fb_leaf.subject if fb_leaf else None}"
                )
            return text
        if leaf is not None:
            cert = f"certificate {leaf.subject}, expires {leaf.not_after}"
        elif self.chain:
            cert = "certificate unreadable"
        else:
            cert = "certificate not visible (TLS 1.3 encrypts it)"
        return f"{self.version} {self.cipher}; {cert}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request": self.request,
            "selected": self.selected,
            "version": self.version,
            "cipher": self.cipher,
            "cipher_bits": self.cipher_bits,
            "error": self.error,
            "server_name": self.server_name,
            "chain": [c.to_dict() for c in self.chain],
            "alert": _alert_dict(self.alert),
            "name_lookups": [n.to_dict() for n in self.name_lookups],
        }
        if self.fallback is not None:
            out["fallback"] = self.fallback.to_dict()
        out["summary"] = self.summary
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TlsFacts:
        kw = _fields(cls, d)
        kw["chain"] = _chain_from(d.get("chain"))
        if d.get("fallback") is not None:
            kw["fallback"] = TlsFallbackFacts.from_dict(d["fallback"])
        kw["alert"] = _alert_from(d.get("alert"))
        kw["name_lookups"] = tuple(NameLookup.from_dict(n) for n in d.get("name_lookups") or ())
        return cls(**kw)


@dataclass(frozen=True)
class TlsVersionsFacts:
    """Which TLS versions a handshake offering only that version got (one connection each). The
    TLS stage's own handshake, offering them all, answers for the version it agreed on (accepted)
    and the newer ones (refused: a server agrees on the newest both ends speak, RFC 8446 4.2.1),
    which are not asked again (rdprobe.live.tls.seen_in_handshake)."""

    versions: dict[str, str]  #: TLSv1 ... TLSv1.3 -> accepted, refused, error: ...

    @property
    def accepted(self) -> list[str]:
        return [v for v, state in self.versions.items() if state == "accepted"]

    @property
    def summary(self) -> str:
        return "accepted: " + (", ".join(self.accepted) or "none")

    def to_dict(self) -> dict[str, Any]:
        return {"versions": dict(self.versions), "accepted": self.accepted, "summary": self.summary}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TlsVersionsFacts:
        return cls(dict(d.get("versions") or {}))


# -- NLA ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NlaFacts:
    """The server's first CredSSP answer to an anonymous NTLM NEGOTIATE (MS-CSSP 3.1.5,
    MS-NLMP 2.2.1.2): its CHALLENGE names the computer, its domain, its build and its clock."""

    selected: str | None
    challenge: NtlmChallenge | None
    tsrequest_version: int | None
    error: str | None
    error_code: int | None = None
    observed_at: datetime | None = None  #: this machine's clock when the challenge arrived

    @property
    def os(self) -> str | None:
        ch = self.challenge
        if ch is None or ch.version is None:
            return None
        major, minor, build = ch.version[:3]
        return describe_windows_version(major, minor, build)

    @property
    def summary(self) -> str:
        ch = self.challenge
        if ch is None:
            return f"no NTLM challenge: {self.error}"
        name = ch.dns_computer or ch.nb_computer or ch.target_name
        domain = ch.dns_domain or ch.nb_domain
        return (
            f"{name}"
            + (f" in {domain}" if domain and domain.lower() != str(name).lower() else "")
            + (f", {self.os}" if self.os else "")
            + f", TSRequest v{self.tsrequest_version}"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "selected": self.selected,
            "challenge": None if self.challenge is None else self.challenge.to_dict(),
            "tsrequest_version": self.tsrequest_version,
            "error": self.error,
            "error_code": None if self.error_code is None else f"0x{self.error_code:08x}",
            "observed_at": None if self.observed_at is None else self.observed_at.isoformat(),
        }
        if self.os is not None:
            out["os"] = self.os
        out["summary"] = self.summary
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NlaFacts:
        ch = d.get("challenge")
        challenge = None
        if ch is not None:
            version = None
            if ch.get("version"):
                major, minor, build = (int(p) for p in ch["version"].split("."))
                version = (major, minor, build, int(ch.get("ntlm_revision") or 0))
            challenge = NtlmChallenge(
                ch.get("target_name") or "",
                NegotiateFlags(int(ch.get("flags") or "0", 16)),
                bytes.fromhex(ch.get("server_challenge") or ""),
                version,
                nb_computer=ch.get("nb_computer"),
                nb_domain=ch.get("nb_domain"),
                dns_computer=ch.get("dns_computer"),
                dns_domain=ch.get("dns_domain"),
                dns_tree=ch.get("dns_tree"),
                timestamp=datetime.fromisoformat(ch["timestamp"]) if ch.get("timestamp") else None,
                other_av_pairs=tuple(
                    (p["id"], bytes.fromhex(p["value"])) for p in ch.get("other_av_pairs") or ()
                ),
            )
        code = d.get("error_code")
        seen = d.get("observed_at")
        return cls(
            d.get("selected"),
            challenge,
            d.get("tsrequest_version"),
            d.get("error"),
            None if code is None else int(code, 16),
            None if seen is None else datetime.fromisoformat(seen),
        )


# -- MCS / Standard RDP Security ----------------------------------------------------------------


@dataclass(frozen=True)
class McsFacts:
    """The MCS Connect Initial / Connect Response exchange (MS-RDPBCGR 2.2.1.3, 2.2.1.4) and, for
    Standard RDP Security, the methods accepted when each was offered alone (5.3.2)."""

    request: str
    selected_protocol: int
    encryption_methods: int  #: what the client offered
    server_data: gcc_server.ServerData | None = None
    connect_response: mcs.ConnectResponse | None = None
    ultimatum: mcs.DisconnectProviderUltimatum | None = None
    error: str | None = None
    raw_hex: str = ""
    elapsed_ms: float = 0.0
    #: method name -> what happened when it was offered alone (one entry in a capture)
    methods: dict[str, MethodOutcome] = field(default_factory=dict)

    @property
    def security(self) -> gcc_server.ServerSecurity | None:
        return self.server_data.security if self.server_data else None

    @property
    def encryption_level(self) -> EncryptionLevelVerdict | None:
        if self.server_data is None:
            return None
        sec = self.security
        return infer_encryption_level(
            sec.encryption_level if sec else None,
            self.methods,
            selected_protocol=self.selected_protocol,
        )

    @property
    def summary(self) -> str:
        sd = self.server_data
        if sd is None:
            return f"MCS Connect failed: {self.error}"
        parts = [sd.core.version_name if sd.core else "RDP version unknown"]
        sec, verdict = sd.security, self.encryption_level
        if sec is not None and verdict is not None:
            parts.append(f"{sec.method_name} / level {verdict.setting}")
            cert = sec.certificate
            if cert is not None:
                text = f"{cert.cert_type} certificate"
                if cert.key_text:
                    text += f" ({cert.key_text})"
                if isinstance(cert, ProprietaryCertificate):
                    text += ", signature OK" if cert.verified else ", BAD signature"
                parts.append(text)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request": self.request,
            "selected_protocol": self.selected_protocol,
            "encryption_methods": self.encryption_methods,
            "server_data": self.server_data.to_dict() if self.server_data else None,
            "connect_response": self.connect_response.to_dict() if self.connect_response else None,
            "ultimatum": self.ultimatum.to_dict() if self.ultimatum else None,
            "error": self.error,
            "raw_hex": self.raw_hex,
            "elapsed_ms": self.elapsed_ms,
        }
        verdict = self.encryption_level
        if verdict is not None:
            out["methods"] = {k: v.to_dict() for k, v in self.methods.items()}
            out["encryption_level"] = verdict.to_dict()
        out["summary"] = self.summary
        return out


# -- RDP over UDP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UdpFacts:
    """The RDP-UDP SYN / SYN+ACK exchange (MS-RDPEUDP 3.1.5.1.1)."""

    outcome: str  #: "synack" | "closed" | "silent" | "other" | "error"
    syn_ack: rdpudp.RdpUdpSyn | None = None
    bytes_sent: int = 0
    bytes_received: int = 0
    probe_size: int = 0
    amplification: float | None = None  #: first answer / one probe datagram
    rtt_ms: float | None = None
    attempts: int = 0
    ack_matches: bool | None = None  #: SYN+ACK's snSourceAck == the SYN's ISN
    error: str | None = None
    reply_hex: str = ""  #: first 64 bytes of a reply that is not a SYN+ACK

    @property
    def summary(self) -> str:
        return {
            "synack": f"UDP transport answers (reply/probe {self.amplification})",
            "closed": "closed (ICMP port unreachable)",
            "silent": "no answer (filtered or UDP transport disabled)",
        }.get(self.outcome, f"{self.outcome}: {self.error}")

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["syn_ack"] = self.syn_ack.to_dict() if self.syn_ack else None
        out["summary"] = self.summary
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UdpFacts:
        kw = _fields(cls, d)
        s = d.get("syn_ack")
        if s is not None:
            kw["syn_ack"] = rdpudp.RdpUdpSyn(
                s["flags"], s["ack"], s["window"], s["isn"], s["up_mtu"], s["down_mtu"],
                s.get("synex_flags"), s.get("version"),
                bytes.fromhex(s["correlation_id"]) if s.get("correlation_id") else None,
                bytes.fromhex(s["cookie_hash"]) if s.get("cookie_hash") else None,
                s.get("length", 0),
            )  # fmt: skip
        return cls(**kw)


StageFacts = TlsFacts | TlsVersionsFacts | NlaFacts | McsFacts | UdpFacts | StageNote
