"""How bad a finding is, and the exit codes that follow from the worst one."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Severity(enum.IntEnum):
    """Ordered: a report's exit code follows from its worst finding."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()


class ExitCode(enum.IntEnum):
    """Process exit codes of every command, documented in README.md ("Exit codes")."""

    OK = 0  #: every target answered as asked and nothing of warning severity or worse was found
    PROBLEM = 1  #: a problem (warning or worse) was found, or a target did not answer as asked
    USAGE = 2  #: bad arguments or input; nothing was probed
    INTERNAL = 3  #: a bug in rdprobe (reported in one line; please file it)
    INTERRUPTED = 130  #: stopped by Ctrl-C (128 + SIGINT); what finished is printed or written
    OUTPUT_CLOSED = 141  #: what read the output went away (``| head``; 128 + SIGPIPE), quietly


#: Outcomes that count as "answered as asked": RDP answered, or (``--depth tcp``, the telnet
#: replacement) the port accepted the connection and nothing more was asked of it.
ANSWERED = frozenset({"rdp", "open"})


def exit_code(results: Iterable[tuple[str, Severity]]) -> ExitCode:
    """The one exit-code rule, for ``(outcome, worst severity)`` of each result: OK when there
    is at least one result and every one answered as asked with nothing of warning or worse."""
    seen = False
    for outcome, worst in results:
        seen = True
        if outcome not in ANSWERED or worst >= Severity.WARNING:
            return ExitCode.PROBLEM
    return ExitCode.OK if seen else ExitCode.PROBLEM
