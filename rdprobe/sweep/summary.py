"""The end-of-sweep summary: counters fed one row at a time (rows are not kept).

By outcome, by security setting (the listener's setting in the admin's words), by certificate
problem (finding ids starting ``cert`` or ``tls.``) and by OS build (what the NLA stage's NTLM
challenge revealed, when it ran).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from rdprobe.analysis.severity import ExitCode, exit_code

if TYPE_CHECKING:  # rich loads when the summary is shown (a sweep worker only counts)
    from rich.console import Console
    from rich.table import Table

CERT_PREFIXES = ("cert", "tls.")


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
        for i in ids:
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
            "by_outcome": dict(self.outcome.most_common()),
            "by_setting": dict(self.setting.most_common()),
            "by_certificate_problem": dict(self.cert.most_common()),
            "by_os_build": dict(self.os.most_common()),
        }

    def tables(self) -> list[Table]:
        from rich.table import Table

        out = []
        for title, counter in (
            ("by outcome", self.outcome),
            ("by security setting", self.setting),
            ("by certificate problem", self.cert),
            ("by OS build (from NLA)", self.os),
        ):
            if not counter:
                continue
            table = Table(title=title, title_justify="left", show_header=False, box=None)
            table.add_column(justify="left")
            table.add_column(justify="right")
            for key, n in counter.most_common():
                table.add_row(key, str(n))
            out.append(table)
        return out

    def render(self, console: Console, headline: str) -> None:
        console.print(headline, soft_wrap=True)
        for table in self.tables():
            console.print(table)


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
