"""`rdprobe merge FILES...`: many sweeps' JSON Lines into one result set, one row per target:port.

The row whose ``started`` is latest wins (on a tie, the later file, then the later line). Two rows
of one target:port with different outcomes are a conflict: reported and counted. Only a small
index (target -> time, file, offset, outcome) is held; the winning rows are copied from their
files in a second pass, in file and line order. Lines that are not result rows (a truncated last
line, say) are skipped and counted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from rdprobe.render.jsonl import READABLE_SCHEMAS


@dataclass
class MergeResult:
    files: int = 0
    rows_read: int = 0
    rows_out: int = 0
    duplicates: int = 0  #: rows replaced by (or losing to) another row of the same target:port
    conflicts: int = 0  #: target:ports whose rows disagree on the outcome
    bad_lines: int = 0


@dataclass
class _Entry:
    started: datetime
    file: int
    offset: int
    outcome: str


def _started(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse(line: bytes) -> tuple[str, datetime, str] | None:
    try:
        row = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(row, dict) or row.get("schema") not in READABLE_SCHEMAS:
        return None
    target, started = row.get("target"), _started(row.get("started"))
    if not isinstance(target, str) or started is None:
        return None
    return target, started, str(row.get("outcome"))


def merge_files(
    paths: Sequence[str | os.PathLike[str]],
    out: IO[str],
    *,
    report: Callable[[str], None] = lambda _line: None,
) -> MergeResult:
    """Merge the files into ``out``; ``report`` gets one line per conflict and per bad file."""
    result = MergeResult(files=len(paths))
    index: dict[str, _Entry] = {}
    conflicted: set[str] = set()
    names = [str(p) for p in paths]
    for number, path in enumerate(paths):
        with open(path, "rb") as fh:
            offset = 0
            for line in fh:
                here, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                parsed = _parse(line)
                if parsed is None:
                    result.bad_lines += 1
                    continue
                result.rows_read += 1
                target, started, outcome = parsed
                new = _Entry(started, number, here, outcome)
                old = index.get(target)
                if old is None:
                    index[target] = new
                    continue
                result.duplicates += 1
                winner = new if new.started >= old.started else old
                if old.outcome != new.outcome:
                    if target not in conflicted:
                        conflicted.add(target)
                        result.conflicts += 1
                    report(
                        f"conflict: {target}: {old.outcome} ({names[old.file]}, "
                        f"{old.started.isoformat()}) vs {new.outcome} ({names[new.file]}, "
                        f"{new.started.isoformat()}); keeping {winner.outcome} (latest)"
                    )
                index[target] = winner
    chosen = sorted(index.values(), key=lambda e: (e.file, e.offset))
    del index
    current = -1
    src: IO[bytes] | None = None
    try:
        for entry in chosen:
            if src is None or entry.file != current:
                if src is not None:
                    src.close()
                src, current = open(paths[entry.file], "rb"), entry.file
            src.seek(entry.offset)
            row = src.readline().decode("utf-8").rstrip("\r\n")
            out.write(row + "\n")
            result.rows_out += 1
    finally:
        if src is not None:
            src.close()
    out.flush()
    return result
