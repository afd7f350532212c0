"""Sweep targets: CIDR blocks, address ranges, IPv4 octet ranges, names and files, expanded lazily.

Forms (each also valid in a file of targets, one or more per line, ``#`` starts a comment):
``10.0.0.0/8``, ``2001:db8::/120``, ``10.0.0.1-10.0.0.50``, ``2001:db8::1-2001:db8::ff``,
``10.0.0-3.1-254`` (per-octet values, ranges, ``*`` and comma lists), ``10.0.0.1-50`` (the last
octet), ``host``, ``host:3390``, ``[v6]:3390``. Excludes take the same forms.

Nothing is expanded ahead: a /8 yields its first target at once. Duplicates are probed once: the
addresses already produced are remembered as merged intervals per port set (a /8 is one interval),
names in a bounded set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from rdprobe.live.target import Target, TargetError, parse_target
from rdprobe.sweep.intervals import IntervalSet
from rdprobe.sweep.items import Block, Name, OctetPattern, Spec

__all__ = [
    "Block",
    "IntervalSet",
    "Name",
    "OctetPattern",
    "Spec",
    "TargetSet",
    "load_specs",
    "parse_spec",
    "read_specs",
]

#: An octet pattern with at most this many contiguous runs is remembered as intervals.
PATTERN_RUNS_AS_INTERVALS = 4096
#: Names remembered for de-duplication; past this a repeated name could be probed twice.
NAME_MEMORY = 1_000_000

_OCTET_PATTERN = re.compile(r"^[0-9*,-]+(?:\.[0-9*,-]+){3}$")
_V4_THEN_DASH = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}-")


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _cidr(raw: str) -> Block:
    try:
        net = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise TargetError(f"{raw!r} is not a valid CIDR block") from None
    return Block(net.version, int(net.network_address), int(net.broadcast_address))


def _octet_values(part: str, raw: str) -> tuple[int, ...]:
    if part == "*":
        return tuple(range(256))
    values: set[int] = set()
    for item in part.split(","):
        lo_s, dash, hi_s = item.partition("-")
        if not lo_s.isdigit() or (dash and not hi_s.isdigit()):
            raise TargetError(f"{raw!r}: bad octet {part!r} (use N, N-M, N,M or *)")
        lo, hi = int(lo_s), int(hi_s) if dash else int(lo_s)
        if hi > 255:
            raise TargetError(f"{raw!r}: octet value {hi} is above 255")
        if lo > hi:
            raise TargetError(f"{raw!r}: octet range {item!r} runs backwards")
        values.update(range(lo, hi + 1))
    return tuple(sorted(values))


def parse_spec(text: str) -> Spec:
    """Parse one target or exclude item; raises TargetError with a one-line reason."""
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    if "/" in raw:
        return Spec(_cidr(raw), None, raw)
    if raw.count("-") == 1 and not raw.startswith("["):
        left, right = raw.split("-")
        lo, hi = _address(left), _address(right)
        if lo is not None and hi is not None:
            if lo.version != hi.version:
                raise TargetError(f"{raw!r}: a range cannot mix IPv4 and IPv6")
            if int(lo) > int(hi):
                raise TargetError(f"address range {raw!r} runs backwards")
            return Spec(Block(lo.version, int(lo), int(hi)), None, raw)
        if lo is not None and lo.version == 6:
            raise TargetError(f"{raw!r}: an IPv6 range needs two full addresses, FIRST-LAST")
    if _OCTET_PATTERN.match(raw) and any(c in raw for c in "*,-"):
        return Spec(OctetPattern(tuple(_octet_values(p, raw) for p in raw.split("."))), None, raw)
    if _V4_THEN_DASH.match(raw):
        raise TargetError(f"{raw!r} is not a valid address range")
    target = parse_target(raw, default_port=0)
    ports = (target.port,) if target.port else None
    if target.is_literal and "%" not in target.host:
        ip = ipaddress.ip_address(target.host)
        return Spec(Block(ip.version, int(ip), int(ip)), ports, raw)
    if not target.is_literal and target.host.rsplit(".", 1)[-1].isdigit():
        # no top-level domain is numeric: this is a mistyped address or range
        raise TargetError(f"{raw!r} is not a valid address, range or host name")
    return Spec(Name(target.host, target.is_literal), ports, raw)


def read_specs(lines: Iterable[str], source: str) -> Iterator[Spec]:
    """Specs from a file's lines (whitespace separated, ``#`` comments); errors name the line."""
    for number, line in enumerate(lines, 1):
        for word in line.split("#", 1)[0].split():
            try:
                yield parse_spec(word)
            except TargetError as exc:
                raise TargetError(f"{source}:{number}: {exc}") from None


def coalesce(specs: Iterable[Spec]) -> list[Spec]:
    """The specs in order, with runs of consecutive single addresses (a file of them) joined."""
    out: list[Spec] = []
    for spec in specs:
        prev = out[-1] if out else None
        item = spec.item
        if (
            prev is not None
            and isinstance(item, Block)
            and isinstance(prev.item, Block)
            and item.version == prev.item.version
            and item.first == prev.item.last + 1
            and spec.ports == prev.ports
        ):
            out[-1] = Spec(Block(item.version, prev.item.first, item.last), spec.ports, prev.text)
        else:
            out.append(spec)
    return out


def format_v4(value: int) -> str:
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


def format_v6(value: int) -> str:
    return str(ipaddress.IPv6Address(value))


class _Cover:
    """What one port set has covered so far: address intervals per family, big patterns, names."""

    __slots__ = ("names", "patterns", "v4", "v6")

    def __init__(self) -> None:
        self.v4 = IntervalSet()
        self.v6 = IntervalSet()
        self.patterns: list[OctetPattern] = []
        self.names: set[str] = set()

    def until(self, version: int, value: int) -> int | None:
        """How far from ``value`` on this cover holds every address, or None if not ``value``."""
        if version == 6:
            return self.v6.until(value)
        end = self.v4.until(value)
        if end is None and any(value in p for p in self.patterns):
            return value
        return end

    def add(self, item: Block | OctetPattern | Name, *, names: bool) -> None:
        if isinstance(item, Name):
            if names:
                self.names.add(item.host)
        elif isinstance(item, OctetPattern) and item.run_count > PATTERN_RUNS_AS_INTERVALS:
            self.patterns.append(item)
        else:
            target = self.v6 if item.version == 6 else self.v4
            for lo, hi in item.runs():
                target.add(lo, hi)


class TargetSet:
    """The targets of a sweep: specs x ports, minus excludes, each target:port once, in order.

    Order: specs as given, addresses ascending within each, ports as given within each address.
    Iterating twice gives the same sequence.
    """

    def __init__(
        self,
        specs: Sequence[Spec],
        ports: Sequence[int],
        excludes: Sequence[Spec] = (),
        *,
        name_memory: int = NAME_MEMORY,
    ) -> None:
        if not ports:
            raise TargetError("no ports to probe")
        self.specs = list(specs)
        self.ports = tuple(ports)
        self.excludes = list(excludes)
        self.name_memory = name_memory

    def upper_bound(self) -> int:
        """Targets before removing duplicates and excludes (for a progress total)."""
        return sum(s.size * len(s.ports or self.ports) for s in self.specs)

    def __iter__(self) -> Iterator[Target]:
        return self.stride(0, 1)

    def stride(self, start: int, step: int) -> Iterator[Target]:
        """The targets whose index is ``start`` modulo ``step``: a shard, in O(1) per target.

        The index counts target:ports before de-duplication and excludes (spec after spec,
        address after address, port after port), so shares taken with the same step and every
        start from 0 to step-1 are disjoint and together give exactly the whole set. A duplicate
        belongs to the share of its first occurrence, because every share remembers every spec
        it passes, whether or not the share probes it.
        """
        if step < 1 or not 0 <= start < step:
            raise ValueError(f"stride start {start} is not in 0..{step - 1}")
        covers: dict[frozenset[int] | None, _Cover] = {}
        for ex in self.excludes:
            key = frozenset(ex.ports) if ex.ports else None
            covers.setdefault(key, _Cover()).add(ex.item, names=True)
        seen_names: set[tuple[str, int]] = set()
        offset = 0  # index of the spec's first target:port
        for spec in self.specs:
            ports = spec.ports or self.ports
            span = spec.size * len(ports)
            first = (start - offset) % step  # the spec's first index in this share
            relevant = {p: [c for k, c in covers.items() if k is None or p in k] for p in ports}
            item = spec.item
            if isinstance(item, Name):
                for i, p in enumerate(ports):
                    name_port = (item.host, p)
                    if name_port in seen_names or any(item.host in c.names for c in relevant[p]):
                        continue
                    if len(seen_names) < self.name_memory:
                        seen_names.add(name_port)
                    if i % step == first:
                        yield Target(item.host, p, item.is_literal)
            elif first < span:
                yield from self._addresses(item, ports, relevant, first, step, span)
            offset += span
            covers.setdefault(frozenset(ports), _Cover()).add(item, names=False)

    @staticmethod
    def _addresses(
        item: Block | OctetPattern,
        ports: tuple[int, ...],
        relevant: dict[int, list[_Cover]],
        index: int,
        step: int,
        span: int,
    ) -> Iterator[Target]:
        version = item.version
        fmt = format_v6 if version == 6 else format_v4
        n_ports = len(ports)
        address: Callable[[int], int]  # index within the item -> address
        after: Callable[[int], int]  # address -> index of the first address above it
        if isinstance(item, Block):
            base = item.first
            address, after = base.__add__, lambda value: value - base + 1
        else:
            address, after = item.at, item.index_after
        if not any(relevant.values()):
            if step == 1 and isinstance(item, Block):  # the whole block: one text per address
                value = item.first
                while value <= item.last:  # not range(): an IPv6 block can exceed a C long
                    host = fmt(value)
                    for p in ports:
                        yield Target(host, p, True)
                    value += 1
                return
            while index < span:
                a, p = divmod(index, n_ports)
                yield Target(fmt(address(a)), ports[p], True)
                index += step
            return
        while index < span:
            a, p = divmod(index, n_ports)
            value = address(a)
            if not any(c.until(version, value) is not None for c in relevant[ports[p]]):
                yield Target(fmt(value), ports[p], True)
                index += step
                continue
            # covered: when every port is covered from here on, jump past the shortest cover
            skip = None
            for port in ports:
                ends = [e for c in relevant[port] if (e := c.until(version, value)) is not None]
                if not ends:
                    skip = None
                    break
                skip = max(ends) if skip is None else min(skip, max(ends))
            if skip is None or skip <= value:
                index += step
                continue
            target = after(skip) * n_ports  # the first index past the covered addresses
            index += max(1, -(-(target - index) // step)) * step


def load_specs(items: Sequence[str], files: Sequence[str], stdin: Iterable[str]) -> list[Spec]:
    """Parse every item (``-`` reads stdin) and every file up front: bad input fails before any
    probe, with one line naming the item or file:line."""
    specs: list[Spec] = []
    for text in items:
        if text.strip() == "-":
            specs.extend(read_specs(stdin, "<stdin>"))
        else:
            specs.append(parse_spec(text))
    for path in files:
        if path == "-":
            specs.extend(read_specs(stdin, "<stdin>"))
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                specs.extend(read_specs(fh, path))
        except OSError as exc:
            raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from None
    return coalesce(specs)
