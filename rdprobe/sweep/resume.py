"""`--resume FILE`: the target:ports an earlier sweep's JSON Lines already holds, to skip them.

The file may end in a line cut short by a kill; that line is not counted as done, and before new
rows are appended it is cut off (``prepare_append``) so every line stays one whole JSON object.
Addresses are kept as merged intervals per port, so a finished /8 costs a few intervals, not
sixteen million strings.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field

from rdprobe.live.target import Target
from rdprobe.sweep.targets import IntervalSet

_BATCH = 65536


class DoneSet:
    """Target:ports seen in result rows: address intervals per (family, port), and names."""

    def __init__(self) -> None:
        self._addresses: dict[tuple[int, int], IntervalSet] = {}
        self._pending: dict[tuple[int, int], list[int]] = {}
        self._names: set[tuple[str, int]] = set()

    def add(self, host: str, port: int) -> None:
        ip = None if "%" in host else _ip(host)
        if ip is None:
            self._names.add((host, port))
            return
        key = (ip.version, port)
        batch = self._pending.setdefault(key, [])
        batch.append(int(ip))
        if len(batch) >= _BATCH:
            self._flush(key)

    def _flush(self, key: tuple[int, int]) -> None:
        batch = sorted(self._pending.pop(key, []))
        if not batch:
            return
        intervals = self._addresses.setdefault(key, IntervalSet())
        lo = hi = batch[0]
        for v in batch[1:]:
            if v <= hi + 1:
                hi = max(hi, v)
            else:
                intervals.add(lo, hi)
                lo = hi = v
        intervals.add(lo, hi)

    def freeze(self) -> None:
        for key in list(self._pending):
            self._flush(key)

    def __contains__(self, target: Target) -> bool:
        ip = None if "%" in target.host or not target.is_literal else _ip(target.host)
        if ip is None:
            return (target.host, target.port) in self._names
        if self._pending:
            self.freeze()
        intervals = self._addresses.get((ip.version, target.port))
        return intervals is not None and int(ip) in intervals

    def count(self) -> int:
        self.freeze()
        return len(self._names) + sum(s.count() for s in self._addresses.values())


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass
class ResumeState:
    done: DoneSet = field(default_factory=DoneSet)
    rows: int = 0  #: whole rows read
    bad_lines: int = 0  #: lines that were not a result row (skipped)
    good_end: int = 0  #: byte offset just after the last whole row
    partial: bool = False  #: the file ended in a line cut short
    needs_newline: bool = False  #: the last row is whole but lacks its newline


def load_done(path: str | os.PathLike[str]) -> ResumeState:
    """Read a JSON Lines result file; a missing file is an empty state."""
    state = ResumeState()
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return state
    with fh:
        offset = 0
        for line in fh:
            end = offset + len(line)
            complete = line.endswith(b"\n")
            row = _row(line)
            if row is not None:
                state.done.add(str(row["host"]), int(row["port"]))
                state.rows += 1
                state.good_end = end
                state.needs_newline = not complete
            elif not complete:
                state.partial = True
            elif line.strip():
                state.bad_lines += 1
                state.good_end = end
            else:
                state.good_end = end
            offset = end
    state.done.freeze()
    return state


def _row(line: bytes) -> dict | None:
    try:
        row = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("host"), str):
        return None
    if not isinstance(row.get("port"), int):
        return None
    return row


def prepare_append(path: str | os.PathLike[str], state: ResumeState) -> None:
    """Make the file safe to append to: cut a partial last line, end the last row's line."""
    if not os.path.exists(path):
        return
    if state.partial:
        with open(path, "r+b") as fh:
            fh.truncate(state.good_end)
    if state.needs_newline:
        with open(path, "ab") as fh:
            fh.write(b"\n")
        state.needs_newline = False
