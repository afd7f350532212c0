"""Name resolution under a deadline, honouring the ``--resolve`` overrides (like curl's).

One place for every lookup the live probe makes: the target itself (``check.resolve``) and the DNS
names of a certificate that does not name the target (so the judge can say whether they point at
the address probed: a certificate copied from another server, or a DNS record pointing at the
wrong host). RFC 6761 names are answered without a query: ``localhost`` and ``*.localhost`` are
the loopback addresses (§6.3), ``*.invalid`` never resolves (§6.4).
"""

from __future__ import annotations

import asyncio
import os
import socket

from rdprobe.analysis.facts import NameLookup
from rdprobe.defaults import MAX_CERT_NAME_LOOKUPS, NAME_LOOKUP_MODES
from rdprobe.protocol.errors import one_line

LOOPBACK = ("127.0.0.1", "::1")
OVERRIDE, RESOLVER, RESERVED, SKIPPED = "--resolve", "dns", "rfc6761", "not looked up"


def lookup_mode() -> str:
    """RDPROBE_NAME_LOOKUP (dns, local or off; dns when unset or unknown)."""
    mode = os.environ.get("RDPROBE_NAME_LOOKUP", "dns").strip().lower()
    return mode if mode in NAME_LOOKUP_MODES else "dns"


def _reserved(name: str) -> NameLookup | None:
    host = name.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return NameLookup(name, LOOPBACK, None, RESERVED)
    if host == "invalid" or host.endswith(".invalid"):
        return NameLookup(name, (), "a .invalid name never resolves (RFC 6761)", RESERVED)
    return None


async def lookup(
    name: str,
    timeout: float,
    overrides: dict[str, list[str]] | None = None,
    *,
    port: int = 0,
    mode: str | None = None,
) -> NameLookup:
    """The addresses of ``name`` (resolver order, de-duplicated), or why there are none."""
    wanted = name.rstrip(".").lower()
    for key, given in (overrides or {}).items():
        if key.rstrip(".").lower() == wanted:  # DNS names compare without case (RFC 4343)
            return NameLookup(name, tuple(given), None, OVERRIDE)
    reserved = _reserved(name)
    if reserved is not None:
        return reserved
    mode = mode or lookup_mode()
    if mode != "dns":
        why = f"name lookups are limited to --resolve overrides (RDPROBE_NAME_LOOKUP={mode})"
        return NameLookup(name, (), why, SKIPPED)
    if timeout <= 0:
        return NameLookup(name, (), "no time left for a lookup", SKIPPED)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(name, port, type=socket.SOCK_STREAM), timeout
        )
    except TimeoutError:
        return NameLookup(name, (), f"no answer from the resolver within {timeout:.1f} s", RESOLVER)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        return NameLookup(name, (), one_line(exc), RESOLVER)
    found = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    return NameLookup(name, found, None, RESOLVER)


def lookup_names(names: tuple[str, ...] | list[str]) -> list[str]:
    """The certificate names worth resolving: DNS names only (no wildcard, no IP literal),
    de-duplicated, at most MAX_CERT_NAME_LOOKUPS."""
    out: list[str] = []
    for name in names:
        host = name.strip().rstrip(".")
        if not host or "*" in host or _is_ip(host) or host.lower() in (n.lower() for n in out):
            continue
        out.append(host)
    return out[:MAX_CERT_NAME_LOOKUPS]


async def lookup_all(
    names: list[str],
    timeout: float,
    overrides: dict[str, list[str]] | None = None,
    *,
    mode: str | None = None,
) -> tuple[NameLookup, ...]:
    """Each name looked up at once, all within ``timeout``."""
    found = await asyncio.gather(*(lookup(n, timeout, overrides, mode=mode) for n in names))
    return tuple(found)


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return False
    return True
