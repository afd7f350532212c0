"""How a probe ran, the names of the later stages, and what a stage that produced no facts left.

Apart from the stages' facts (rdprobe.analysis.facts, which re-exports these) because every
observation carries them: a refused port is observed and judged with these alone, without
loading the protocol modules the stages' facts are read with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Any

#: The later stages, in the order they run and are shown (attribute names of TargetObservation).
STAGES: tuple[str, ...] = ("tls", "tls_versions", "nla", "mcs", "session", "udp", "auth")


@dataclass(frozen=True)
class RunConfig:
    """How the probe ran (evidence for timeouts; not part of the JSON ``stages``)."""

    timeout_s: float | None = None
    cookie: str | None = None
    deadline: str | None = None
    """When the target's deadline ran out: the step it ran out in (the stages after it are
    skipped with this reason)."""


@dataclass(frozen=True)
class StageNote:
    """A stage without facts: ``skipped`` (the server could not be taken that far this time) or
    ``error`` (an internal error of the stage; the target's result is kept)."""

    skipped: str | None = None
    error: str | None = None

    @property
    def summary(self) -> str | None:
        return f"skipped: {self.skipped}" if self.skipped is not None else None

    def to_dict(self) -> dict[str, Any]:
        if self.skipped is not None:
            return {"skipped": self.skipped, "summary": self.summary}
        return {"error": self.error}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StageNote:
        return cls(d.get("skipped"), None if "skipped" in d else d.get("error"))
