"""The one colour of each severity in every terminal view (rich style names; no rich import)."""

from __future__ import annotations

from rdprobe.analysis.severity import Severity

STYLE = {
    Severity.INFO: "green",
    Severity.WARNING: "yellow",
    Severity.ERROR: "red",
    Severity.CRITICAL: "bold red",
}
