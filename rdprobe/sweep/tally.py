"""The counts a sweep worker sends with each batch of rows, and the parent's use of them.

A worker counts its rows (the summary's counters and the verdict) and ends every batch with a
count line (rdprobe.sweep.workers.TALLY_MARK + JSON); the parent adds those counts up and writes
the rows to its JSON Lines outputs as the bytes they came in, parsing rows only for outputs that
need them (--csv, the table). Rows after a worker's last count line (a worker killed mid-write)
are parsed and counted one by one, so the counts always match the rows written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from rdprobe.sweep.summary import Summary, Verdict
from rdprobe.sweep.write_all import write_all


def _write(out: IO[str], data: bytes) -> None:
    """Rows as the bytes they came in: to the binary buffer under a text stream when it has
    one (no decoding and encoding again), flushed."""
    raw = getattr(out, "buffer", None)
    if raw is None:
        out.write(data.decode("utf-8", "replace"))
    else:
        out.flush()  # whatever the text layer holds goes first
        write_all(raw, data)
    out.flush()


class Tally:
    """A worker's counts since its last count line. A row that is the very object added last
    (the shared row of a filled line, rdprobe.render.jsonl.line_and_row) is counted with it."""

    def __init__(self) -> None:
        self.summary = Summary()
        self.verdict = Verdict()
        self._last: dict[str, Any] | None = None
        self._times = 0

    def add(self, row: dict[str, Any]) -> None:
        if row is self._last:
            self._times += 1
            return
        self._count()
        self._last, self._times = row, 1

    def _count(self) -> None:
        if self._last is not None:
            self.summary.add(self._last, self._times)
            self.verdict.add(self._last, self._times)
        self._last, self._times = None, 0

    def take(self) -> bytes:
        """The count line of the rows added since the last one (then counting starts over)."""
        from rdprobe.sweep.workers import TALLY_MARK

        self._count()
        counts = {"summary": self.summary.to_dict(), "problem": self.verdict.problem}
        self.summary, self.verdict = Summary(), Verdict()
        return TALLY_MARK + json.dumps(counts).encode("utf-8") + b"\n"


class ParentRows:
    """The parent's side of one worker's output (a rdprobe.sweep.workers.Consumer).

    ``outputs``: JSON Lines outputs, written each row's line as it came; ``row_sinks``: what
    needs each row parsed (CSV, table); ``counted``: called with the number of rows and the
    counts of every count line (or of each uncounted row at the end)."""

    def __init__(
        self,
        outputs: list[IO[str]],
        row_sinks: list[Callable[[dict[str, Any]], None]],
        summary: Summary,
        verdict: Verdict,
        counted: Callable[[int, dict[str, int]], None],
    ) -> None:
        self.outputs = outputs
        self.row_sinks = row_sinks
        self.summary = summary
        self.verdict = verdict
        self.counted = counted
        self.uncounted: list[bytes] = []

    def lines(self, lines: list[bytes]) -> None:
        from rdprobe.sweep.workers import TALLY_MARK, _rows

        rows = []
        for raw in lines:
            if raw[:1] == TALLY_MARK:
                self._count(raw[1:])
                self.uncounted.clear()
            elif raw:
                rows.append(raw)
                self.uncounted.append(raw)
        if not rows:
            return
        data = b"\n".join(rows) + b"\n"
        for out in self.outputs:
            _write(out, data)
        if self.row_sinks:
            for row in _rows(rows):
                for sink in self.row_sinks:
                    sink(row)

    def _count(self, data: bytes) -> None:
        try:
            counts = json.loads(data)
            summary = counts["summary"]
            self.summary.merge(summary)
            self.verdict.merge(int(summary["rows"]), bool(counts["problem"]))
        except (ValueError, KeyError, TypeError):  # not from a worker of ours: counted by rows
            return
        self.counted(int(summary["rows"]), dict(summary.get("by_outcome") or {}))

    def end(self) -> None:
        """Rows no count line covered: counted one by one."""
        from rdprobe.sweep.workers import _rows

        for row in _rows(self.uncounted):
            self.summary.add(row)
            self.verdict.add(row)
            self.counted(1, {str(row.get("outcome", "error")): 1})
        self.uncounted.clear()
