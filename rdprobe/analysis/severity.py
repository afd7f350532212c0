"""How bad a finding is, and the exit codes that follow from the worst one."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Ordered: a report's exit code follows from its worst finding."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()


class ExitCode(enum.IntEnum):
    """Process exit codes, documented in README.md."""

    OK = 0  #: RDP answered and nothing of warning severity or worse was found
    PROBLEM = 1  #: a problem (warning or worse) was found, or RDP did not answer
    USAGE = 2  #: bad arguments or input; nothing was probed
    INTERNAL = 3  #: a bug in rdprobe (reported in one line; please file it)
