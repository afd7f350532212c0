"""Sorted disjoint integer intervals: what a sweep has covered, in memory proportional to the
number of runs (a /8 is one interval), not to the addresses."""

from __future__ import annotations

import bisect
from collections.abc import Iterator


class IntervalSet:
    """Sorted, disjoint, inclusive integer intervals; overlapping and adjacent ones merge."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        return len(self._starts)

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_right(self._starts, value) - 1
        return i >= 0 and self._ends[i] >= value

    def add(self, lo: int, hi: int) -> None:
        starts, ends = self._starts, self._ends
        i = bisect.bisect_left(ends, lo - 1)  # first interval touching or after lo
        j = bisect.bisect_right(starts, hi + 1)  # first interval wholly after hi
        if i < j:
            lo, hi = min(lo, starts[i]), max(hi, ends[j - 1])
        starts[i:j] = [lo]
        ends[i:j] = [hi]

    def until(self, value: int) -> int | None:
        """The last value of the interval holding ``value``, or None when it is not held."""
        i = bisect.bisect_right(self._starts, value) - 1
        if i >= 0 and self._ends[i] >= value:
            return self._ends[i]
        return None

    def intervals(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def count(self) -> int:
        return sum(e - s + 1 for s, e in self.intervals())
