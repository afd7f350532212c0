"""What a sweep counts as it goes (its own module: the `sweep` command's parent process keeps
these without importing the prober)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SweepStats:
    rows: int = 0
    by_outcome: Counter[str] = field(default_factory=Counter)
    timeout_retries: int = 0
    fd_backoffs: int = 0  #: times a target was put back after fd exhaustion
    probe_errors: int = 0  #: probes that raised (each still got an error row)
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    connection_limit: int = 0  #: the open-connection limit at the end (lower after fd pressure)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
