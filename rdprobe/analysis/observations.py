"""What was seen on the wire, before any judgement: the classifier's only input.

The live prober and the pcap reader both produce these, so both get the same findings. The X.224
matrix is a list of :class:`Attempt`; each later stage's facts are a typed attribute
(``rdprobe.analysis.facts``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from rdprobe.analysis.run_facts import STAGES, RunConfig
from rdprobe.protocol.reply_kind import ReplyKind

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:  # the stages' facts load with the stages (or the pcap reader) that make them
    from typing import Any

    from rdprobe.analysis.auth_facts import AuthFacts
    from rdprobe.analysis.facts import (
        McsFacts,
        NlaFacts,
        StageNote,
        TlsFacts,
        TlsVersionsFacts,
        UdpFacts,
    )
    from rdprobe.analysis.session_facts import SessionFacts
    from rdprobe.protocol.x224 import ServerTpdu

__all__ = ["Attempt", "RepeatStats", "ReplyKind", "ServiceGuess", "TargetObservation", "TcpOutcome"]


class TcpOutcome(enum.StrEnum):
    CONNECTED = "connected"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    HOST_UNREACHABLE = "host_unreachable"
    NET_UNREACHABLE = "net_unreachable"
    ADMIN_PROHIBITED = "admin_prohibited"
    DNS_FAILURE = "dns_failure"
    ERROR = "error"


@dataclass(frozen=True)
class Attempt:
    """One TCP connection carrying one X.224 Connection Request."""

    label: str
    requested: int | None  #: requestedProtocols, None when no RDP_NEG_REQ was sent
    tcp: TcpOutcome
    error: str | None = None
    connect_ms: float | None = None
    first_byte_ms: float | None = None
    reply_kind: ReplyKind | None = None
    reply: bytes = b""  #: what the server sent (bounded), for evidence and fingerprinting
    tpdu: ServerTpdu | None = None
    #: how the connection ended after the reply: "reset", "closed", or None (still open / we closed)
    ended_by_server: str | None = None


@dataclass(frozen=True)
class ServiceGuess:
    """A non-RDP service recognised from its bytes."""

    name: str  #: "HTTP", "HTTPS", "TLS", "SSH", "SMTP", "FTP", "POP3", "IMAP", "VNC", "unknown"
    detail: str | None = None  #: banner, Server header, RFB version...
    preview: str = ""  #: safe printable preview of the first bytes


@dataclass(frozen=True)
class RepeatStats:
    """``--repeat N``: how the primary request fared N times in a row (intermittency)."""

    tries: int
    outcomes: dict[str, int]
    connect_ms: dict[str, float]  #: p50, p90, p99, max over the tries that connected
    first_byte_ms: dict[str, float]


@dataclass
class TargetObservation:
    """Everything probed on one host:port."""

    host: str
    port: int
    address: str | None
    started: datetime
    dns_error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    #: a direct TLS handshake tried when the port did not speak RDP
    direct_tls: ServiceGuess | None = None
    repeat: RepeatStats | None = None
    config: RunConfig = field(default_factory=RunConfig)
    #: the later stages' facts (None: the stage did not run; StageNote: skipped or failed)
    tls: TlsFacts | StageNote | None = None
    tls_versions: TlsVersionsFacts | StageNote | None = None
    nla: NlaFacts | StageNote | None = None
    mcs: McsFacts | StageNote | None = None
    #: the walk to the logon screen (issue 10; rdprobe.analysis.session_facts)
    session: SessionFacts | StageNote | None = None
    udp: UdpFacts | StageNote | None = None
    #: check --user only (rdprobe.analysis.auth_facts)
    auth: AuthFacts | StageNote | None = None

    @property
    def stages(self) -> MappingProxyType[str, dict[str, Any]]:
        """The JSON form of the stages that ran, by name, in STAGES order (read-only)."""
        out = {}
        for name in STAGES:
            facts = getattr(self, name)
            if facts is not None:
                out[name] = facts.to_dict()
        return MappingProxyType(out)
