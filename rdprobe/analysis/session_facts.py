"""Facts of one walk through the connection sequence to the logon screen (issue 10).

What the session driver (rdprobe.live.session) saw, typed and frozen, for the judge
(rdprobe.analysis.session_judge) and the renderers. Times are milliseconds from the start of
the TCP connect. MS-RDPBCGR 1.3.1.1 names the phases the steps follow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Step(enum.Enum):
    """The steps of the walk, in connection-sequence order."""

    TCP_CONNECT = "tcp connect"
    X224 = "x224 connection confirm"
    TLS = "tls handshake"
    MCS_CONNECT = "mcs connect response"
    ERECT_DOMAIN = "erect domain"
    ATTACH_USER = "attach user confirm"
    CHANNEL_JOIN = "channel join confirm"
    SECURITY_EXCHANGE = "security exchange"
    CLIENT_INFO = "client info"
    LICENSING = "licensing"
    DEMAND_ACTIVE = "demand active"


class StopKind(enum.Enum):
    """Why the walk ended before the Demand Active."""

    TIMEOUT = "timeout"  # the server sent nothing (more) within the deadline
    CLOSED = "closed"  # the server closed or reset the connection
    ULTIMATUM = "ultimatum"  # MCS Disconnect Provider Ultimatum
    REFUSED = "refused"  # an MCS result other than rt-successful
    GARBAGE = "garbage"  # bytes that do not parse, or the wrong PDU for the step
    MAC = "mac"  # a server PDU whose MAC does not verify (the keys disagree)
    LICENSING = "licensing"  # a licence exchange the probe does not carry out
    UNSUPPORTED = "unsupported"  # something rdprobe cannot do (e.g. no usable server key)
    ENCRYPTED = "encrypted"  # a capture: the rest of the sequence crossed encrypted


@dataclass(frozen=True)
class StepTime:
    step: Step
    ms: float


@dataclass(frozen=True)
class LicensingFacts:
    """The licensing exchange. ``outcome`` (from the server's last message): valid_client (no
    licence needed), error (an Error Alert with another code), license_issued (NEW_LICENSE or
    UPGRADE_LICENSE), platform_challenge (the full licence protocol, not carried out),
    license_request (stopped there) or other."""

    outcome: str
    message: str  # the server's last licensing message type by name
    messages: tuple[str, ...] = ()  # both directions in order, "server X" / "client Y"
    error_code: int | None = None
    error_name: str | None = None
    state_transition: str | None = None
    company: str | None = None
    product_id: str | None = None
    product_version: int | None = None
    scopes: tuple[str, ...] = ()
    encrypted: bool = False

    def to_dict(self) -> dict[str, object]:
        out = dict(self.__dict__)
        out["scopes"] = list(self.scopes)
        out["messages"] = list(self.messages)
        return out


@dataclass(frozen=True)
class CapabilityFact:
    name: str
    length: int
    fields: tuple[tuple[str, object], ...] = ()

    def get(self, key: str, default: object = None) -> object:
        return dict(self.fields).get(key, default)

    def to_dict(self) -> dict[str, object]:
        return {"type": self.name, "length": self.length, **dict(self.fields)}


@dataclass(frozen=True)
class DemandActiveFacts:
    share_id: int
    source_descriptor: str
    session_id: int | None
    capabilities: tuple[CapabilityFact, ...]

    def find(self, name: str) -> CapabilityFact | None:
        return next((c for c in self.capabilities if c.name == name), None)

    @property
    def os(self) -> str | None:
        general = self.find("CAPSTYPE_GENERAL")
        if general is None:
            return None
        return f"{general.get('os_major')}/{general.get('os_minor')}"

    @property
    def desktop(self) -> tuple[int, int, int] | None:
        bitmap = self.find("CAPSTYPE_BITMAP")
        if bitmap is None:
            return None
        return (int(bitmap.get("desktop_width", 0)), int(bitmap.get("desktop_height", 0)),  # type: ignore[call-overload]
                int(bitmap.get("color_depth", 0)))  # type: ignore[call-overload]  # fmt: skip

    def to_dict(self) -> dict[str, object]:
        return {
            "share_id": f"0x{self.share_id:08x}",
            "source_descriptor": self.source_descriptor,
            "session_id": self.session_id,
            "os": self.os,
            "desktop": list(self.desktop) if self.desktop else None,
            "capabilities": [c.to_dict() for c in self.capabilities],
        }


@dataclass(frozen=True)
class ErrorInfoFact:
    code: int
    name: str
    step: Step  # the step during which the server sent it

    def to_dict(self) -> dict[str, object]:
        return {"code": f"0x{self.code:08X}", "name": self.name, "step": self.step.value}


@dataclass(frozen=True)
class SessionFacts:
    """Everything one walk established; ``reached_logon`` is the headline."""

    path: str  # "rdp" (Standard RDP Security) or "tls" (Enhanced, TLS)
    selected_protocol: int
    encryption_method: str | None = None
    encryption_level: str | None = None
    steps: tuple[StepTime, ...] = ()
    rtt_ms: float | None = None  # the TCP handshake: the path's own round trip
    user_channel: int | None = None
    io_channel: int | None = None
    joined_channels: tuple[int, ...] = ()
    licensing: LicensingFacts | None = None
    demand_active: DemandActiveFacts | None = None
    error_info: tuple[ErrorInfoFact, ...] = ()
    deactivate_all: bool = False
    ultimatum: str | None = None  # the Disconnect Provider Ultimatum reason, by name
    stopped_at: Step | None = None
    stop_kind: StopKind | None = None
    stop_reason: str | None = None
    pdus_received: tuple[str, ...] = field(default=())  # every server PDU by name, in order

    @property
    def reached_logon(self) -> bool:
        return self.demand_active is not None

    @property
    def logon_ms(self) -> float | None:
        return self.time_of(Step.DEMAND_ACTIVE)

    def time_of(self, step: Step) -> float | None:
        return next((s.ms for s in self.steps if s.step is step), None)

    @property
    def outcome(self) -> str:
        if self.reached_logon:
            return f"reached the logon screen in {self.logon_ms:.0f} ms"
        where = self.stopped_at.value if self.stopped_at else "an unknown step"
        return f"stopped at {where}: {self.stop_reason or 'no reason recorded'}"

    @property
    def summary(self) -> str:
        """One line: the outcome, then the security, licensing and desktop it saw."""
        parts = [self.outcome]
        if self.path == "tls":
            parts.append("TLS")
        elif self.encryption_method:
            parts.append(f"RDP Security {self.encryption_method}/{self.encryption_level}")
        if self.licensing:
            lic = self.licensing
            parts.append(f"licensing {lic.error_name or lic.message}")
        for info in self.error_info:
            parts.append(info.name)
        demand = self.demand_active
        if demand is not None:
            desk = demand.desktop
            size = f" {desk[0]}x{desk[1]}x{desk[2]}" if desk else ""
            parts.append(f"{demand.os}{size}, {len(demand.capabilities)} capability sets")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary,
            "path": self.path,
            "selected_protocol": self.selected_protocol,
            "encryption_method": self.encryption_method,
            "encryption_level": self.encryption_level,
            "reached_logon": self.reached_logon,
            "logon_ms": self.logon_ms,
            "rtt_ms": self.rtt_ms,
            "outcome": self.outcome,
            "steps": [{"step": s.step.value, "ms": s.ms} for s in self.steps],
            "user_channel": self.user_channel,
            "io_channel": self.io_channel,
            "joined_channels": list(self.joined_channels),
            "licensing": self.licensing.to_dict() if self.licensing else None,
            "demand_active": self.demand_active.to_dict() if self.demand_active else None,
            "error_info": [e.to_dict() for e in self.error_info],
            "deactivate_all": self.deactivate_all,
            "ultimatum": self.ultimatum,
            "stopped_at": self.stopped_at.value if self.stopped_at else None,
            "stop_kind": self.stop_kind.value if self.stop_kind else None,
            "stop_reason": self.stop_reason,
            "pdus_received": list(self.pdus_received),
        }
