"""What one target item covers: an address block, an IPv4 octet pattern or a name, and the
index arithmetic on it (the n-th address of a pattern, the first index past an address) that
lets a shard walk only its own targets."""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Block:
    """A contiguous block of addresses of one family (a CIDR block, a range, one address)."""

    version: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def runs(self) -> Iterator[tuple[int, int]]:
        yield self.first, self.last


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


@dataclass(frozen=True)
class OctetPattern:
    """IPv4 addresses whose four octets each come from a set (nmap-style ``10.0.0-3.1-254``)."""

    octets: tuple[tuple[int, ...], ...]
    _sets: tuple[frozenset[int], ...] = field(init=False, repr=False, compare=False)
    version = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sets", tuple(frozenset(o) for o in self.octets))

    @property
    def size(self) -> int:
        return math.prod(len(o) for o in self.octets)

    @property
    def run_count(self) -> int:
        return math.prod(len(o) for o in self.octets[:3]) * len(_runs(self.octets[3]))

    def runs(self) -> Iterator[tuple[int, int]]:
        last = _runs(self.octets[3])
        for a, b, c in itertools.product(*self.octets[:3]):
            base = (a << 24) | (b << 16) | (c << 8)
            for lo, hi in last:
                yield base | lo, base | hi

    def at(self, index: int) -> int:
        """The address at ``index`` (0-based) of the ascending sequence: mixed-radix digits."""
        o = self.octets
        index, d = divmod(index, len(o[3]))
        value = o[3][d]
        index, d = divmod(index, len(o[2]))
        value |= o[2][d] << 8
        index, d = divmod(index, len(o[1]))
        return value | o[1][d] << 16 | o[0][index] << 24

    def index_after(self, value: int) -> int:
        """The index of the first address of the pattern above ``value`` (size when none)."""
        o = self.octets
        digits = [(value >> shift) & 255 for shift in (24, 16, 8, 0)]
        for p in (3, 2, 1, 0):  # keep digits [0, p) as they are, raise digit p, minimise the rest
            prefix = [bisect.bisect_left(o[i], digits[i]) for i in range(p)]
            if any(j == len(o[i]) or o[i][j] != digits[i] for i, j in enumerate(prefix)):
                continue
            j = bisect.bisect_right(o[p], digits[p])
            if j < len(o[p]):
                index = 0
                for i, x in enumerate([*prefix, j]):
                    index = index * len(o[i]) + x
                for i in range(p + 1, 4):
                    index *= len(o[i])
                return index
        return self.size

    def __contains__(self, value: int) -> bool:
        s = self._sets
        return (
            (value >> 24) & 255 in s[0]
            and (value >> 16) & 255 in s[1]
            and (value >> 8) & 255 in s[2]
            and value & 255 in s[3]
        )


@dataclass(frozen=True)
class Name:
    """A host name (resolved when probed), or an IPv6 literal with a zone id."""

    host: str
    is_literal: bool = False

    @property
    def size(self) -> int:
        return 1


@dataclass(frozen=True)
class Spec:
    """One item the user typed: what it covers, and its own port when it named one."""

    item: Block | OctetPattern | Name
    ports: tuple[int, ...] | None
    text: str

    @property
    def size(self) -> int:
        return self.item.size
