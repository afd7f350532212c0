"""The end-of-sweep summary: counters fed one row at a time (rows are not kept).

By outcome, by security setting (the listener's setting in the admin's words), by certificate
problem (finding ids starting ``cert`` or ``tls.``) and by OS build (what the NLA stage's NTLM
challenge revealed, when it ran).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rdprobe.analysis.severity import ExitCode, exit_code

if TYPE_CHECKING:
    from typing import TextIO

    from rdprobe.render.text import Line

CERT_PREFIXES = ("cert", "tls.")


def ordered(counter: Counter[str]) -> list[tuple[str, int]]:
    """The most frequent first, ties by name: the same summary for the same rows, whatever
    order they finished in."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def os_build(row: dict[str, Any]) -> str | None:
    """'Windows Server 2019 (10.0.17763)' from stages.nla, or None when NLA revealed nothing."""
    nla = (row.get("stages") or {}).get("nla")
    if not isinstance(nla, dict):
        return None
    challenge = nla.get("challenge")
    version = challenge.get("version") if isinstance(challenge, dict) else None
    name = nla.get("os")
    if version and name:
        return f"{name} ({version})"
    return name or version or None


class Summary:
    """Counts of rows by outcome, setting, certificate problem and OS build."""

    def __init__(self) -> None:
        self.rows = 0
        self.outcome: Counter[str] = Counter()
        self.setting: Counter[str] = Counter()
        self.cert: Counter[str] = Counter()
        self.os: Counter[str] = Counter()

    def add(self, row: dict[str, Any], times: int = 1) -> None:
        """Count ``row`` (``times`` rows alike)."""
        self.rows += times
        self.outcome[str(row.get("outcome"))] += times
        setting = row.get("setting")
        if isinstance(setting, dict) and setting.get("summary"):
            self.setting[str(setting["summary"])] += times
        ids = {
            str(f.get("id"))
            for f in row.get("findings") or ()
            if isinstance(f, dict) and str(f.get("id", "")).startswith(CERT_PREFIXES)
        }
        for i in sorted(ids):
            self.cert[i] += times
        build = os_build(row)
        if build:
            self.os[build] += times

    def merge(self, counts: dict[str, Any]) -> None:
        """Add counts in the form of ``to_dict`` (a worker's, rdprobe.sweep.workers.Tally)."""
        self.rows += int(counts.get("rows", 0))
        for key, counter in self._counters():
            counter.update({str(k): int(v) for k, v in dict(counts.get(key) or {}).items()})

    def _counters(self) -> tuple[tuple[str, Counter[str]], ...]:
        return (
            ("by_outcome", self.outcome),
            ("by_setting", self.setting),
            ("by_certificate_problem", self.cert),
            ("by_os_build", self.os),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "by_outcome": dict(ordered(self.outcome)),
            "by_setting": dict(ordered(self.setting)),
            "by_certificate_problem": dict(ordered(self.cert)),
            "by_os_build": dict(ordered(self.os)),
        }

    def lines(self, width: int) -> list[Line]:
        """Each non-empty counter under its title, a row per value with its count at the right,
        a long value wrapped to fit ``width`` columns (laid out by rdprobe.render.text, not
        rich: a sweep loads no rich unless it draws a progress bar or a table)."""
        from rdprobe.render.text import MIN_COLUMN, clean, columns, wrap

        out: list[Line] = []
        for title, counter in (
            ("by outcome", self.outcome),
            ("by security setting", self.setting),
            ("by certificate problem", self.cert),
            ("by OS build (from NLA)", self.os),
        ):
            if not counter:
                continue
            pairs = [(clean(key), str(n)) for key, n in ordered(counter)]
            count_w = max(len(n) for _, n in pairs)
            key_w = min(max(len(k) for k, _ in pairs), max(MIN_COLUMN, width - count_w - 4))
            cells = [[wrap([(key, "")], key_w), [[(n, "")]]] for key, n in pairs]
            out.append([(title, "")])
            for line in columns(cells, [key_w, count_w], justify=("left", "right")):
                out.append([(" ", ""), *line])
        return out

    def render(self, stream: TextIO, headline: str) -> None:
        from rdprobe.render.terminal import for_stream
        from rdprobe.render.text import clean

        term = for_stream(stream)
        term.write(stream, [[(clean(headline), "")], *self.lines(term.width)])


class Verdict:
    """The exit code of a sweep, from its rows as they pass (the same rule as `check`)."""

    def __init__(self) -> None:
        self.rows = 0
        self.problem = False

    def add(self, row: dict[str, Any], times: int = 1) -> None:
        from rdprobe.render.rows import severity

        self.rows += times
        if not self.problem:
            pair = (str(row.get("outcome")), severity(row.get("worst")))
            self.problem = exit_code([pair]) is not ExitCode.OK

    def merge(self, rows: int, problem: bool) -> None:
        self.rows += rows
        self.problem = self.problem or problem

    def code(self) -> ExitCode:
        return ExitCode.PROBLEM if self.problem or not self.rows else ExitCode.OK
