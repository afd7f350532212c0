"""Parse what the user typed as a target: host, host:port, [v6]:port, IPv4 / IPv6 literals."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from rdprobe.protocol.endpoint import RDP_PORT, format_endpoint

DEFAULT_PORT = RDP_PORT
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)


class TargetError(ValueError):
    """A target the user typed that cannot be probed; the message is one line."""


@dataclass(frozen=True)
class Target:
    """What to probe: a host (name or IP literal) and a port."""

    host: str  #: name or address literal, without brackets
    port: int
    is_literal: bool

    def __str__(self) -> str:
        return format_endpoint(self.host, self.port)


def parse_port(text: str, what: str = "port") -> int:
    if not text.isdigit():
        raise TargetError(f"{what} {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise TargetError(f"{what} {port} is outside 1-65535")
    return port


def parse_ports(spec: str) -> list[int]:
    """'3389,3388-3399' -> ordered, de-duplicated ports."""
    ports: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise TargetError(f"empty item in port list {spec!r}")
        if "-" in part:
            lo_s, _, hi_s = part.partition("-")
            lo, hi = parse_port(lo_s.strip()), parse_port(hi_s.strip())
            if lo > hi:
                raise TargetError(f"port range {part!r} runs backwards")
            ports.extend(range(lo, hi + 1))
        else:
            ports.append(parse_port(part))
    return list(dict.fromkeys(ports))


def _literal(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0])) + (
            "%" + text.split("%", 1)[1] if "%" in text else ""
        )
    except ValueError:
        return None


def parse_target(text: str, default_port: int = DEFAULT_PORT) -> Target:
    """Parse one target; raises TargetError with a one-line reason."""
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    if any(c.isspace() for c in raw) or "/" in raw:
        raise TargetError(f"{text!r} is not a host, host:port or [IPv6]:port")
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise TargetError(f"{text!r}: missing ']' after the IPv6 address")
        inner, rest = raw[1:end], raw[end + 1 :]
        lit = _literal(inner)
        if lit is None or ":" not in inner:
            raise TargetError(f"{inner!r} inside brackets is not an IPv6 address")
        if not rest:
            return Target(lit, default_port, True)
        if not rest.startswith(":"):
            raise TargetError(f"{text!r}: expected ':port' after ']'")
        return Target(lit, parse_port(rest[1:]), True)
    if raw.count(":") >= 2:  # a bare IPv6 literal: no port possible without brackets
        lit = _literal(raw)
        if lit is None:
            raise TargetError(f"{text!r} is not an IPv6 address (write [addr]:port for a port)")
        return Target(lit, default_port, True)
    host, sep, port_s = raw.partition(":")
    port = parse_port(port_s) if sep else default_port
    lit = _literal(host)
    if lit is not None:
        return Target(lit, port, True)
    if re.fullmatch(r"[0-9.]+", host):
        raise TargetError(f"{host!r} is not a valid IPv4 address")
    if not _HOSTNAME.match(host):
        raise TargetError(f"{host!r} is not a valid host name")
    return Target(host.rstrip(".").lower() if host != "." else host, port, False)
