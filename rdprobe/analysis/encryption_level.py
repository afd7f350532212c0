"""The Encryption level setting as the admin knows it, inferred from what the server chose.

MS-RDPBCGR 5.3.2 (encryption levels) and 2.2.1.4.3 (SC_SECURITY): the server's encryptionLevel,
checked against which encryption methods it accepted when each was offered alone (the method
matrix the live probe runs; a capture shows the one method of its connection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rdprobe.protocol import gcc

#: encryptionLevel -> the name of the Group Policy / RDP-Tcp setting (MS-RDPBCGR 5.3.2)
ADMIN_LEVELS = {
    0: "None",
    1: "Low",
    2: "Client Compatible",
    3: "High",
    4: "FIPS Compliant",
}


@dataclass(frozen=True)
class MethodOutcome:
    """What the server did when one encryption method was offered alone.

    ``answered``: a Connect Response with security data came back; ``accepted``: it chose the
    method offered (xrdp answers with its own configured method whatever is offered).
    """

    offered: str
    answered: bool
    accepted: bool
    encryption_method: str | None = None
    encryption_level: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MethodOutcome:
        return cls(
            str(d["offered"]), bool(d["answered"]), bool(d["accepted"]),
            d.get("encryption_method"), d.get("encryption_level"), d.get("error"),
        )  # fmt: skip


@dataclass(frozen=True)
class EncryptionLevelVerdict:
    setting: str  # "Low", "Client Compatible", "High", "FIPS Compliant", "None", or a hedge
    level: int | None  # encryptionLevel as the server sent it
    accepted: tuple[str, ...]  # methods the server accepted when offered alone
    basis: str
    consistent: bool = True

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "accepted": list(self.accepted)}


def infer_encryption_level(
    level: int | None,
    matrix: Mapping[str, MethodOutcome],
    *,
    selected_protocol: int = 0,
) -> EncryptionLevelVerdict:
    """Encryption level (Group Policy / RDP-Tcp setting) from encryptionLevel plus the matrix."""
    accepted = tuple(name for name, o in matrix.items() if o.accepted)
    if selected_protocol != 0:
        return EncryptionLevelVerdict(
            "not applicable (Enhanced RDP Security: TLS encrypts)", level, accepted,
            f"selected protocol {selected_protocol} is not PROTOCOL_RDP",
        )  # fmt: skip
    if level is None:
        levels = {o.encryption_level for o in matrix.values() if o.answered}
        named = {v: k for k, v in gcc.SHORT_LEVEL.items()}
        only = next(iter(levels)) if len(levels) == 1 else None
        if only is not None and only in named:
            level = named[only]
    weak = {"40BIT", "56BIT"} & set(accepted)
    if level is None:
        if not accepted:
            return EncryptionLevelVerdict("unknown", None, accepted, "no method was accepted")
        if set(accepted) == {"FIPS"}:
            setting = "FIPS Compliant"
        elif weak:
            setting = "Low or Client Compatible"
        else:
            setting = "High"
        basis = f"inferred from accepted methods {', '.join(accepted)}"
        return EncryptionLevelVerdict(setting, None, accepted, basis)
    setting = ADMIN_LEVELS.get(level, f"unknown level {level}")
    consistent = True
    if level == 3 and weak:
        consistent = False  # High must refuse clients without 128-bit
    if level == 4 and set(accepted) - {"FIPS"}:
        consistent = False
    basis = f"encryptionLevel {level} ({gcc.SHORT_LEVEL.get(level, '?')})"
    if matrix:
        basis += f"; accepted alone: {', '.join(accepted) or 'none'}"
    return EncryptionLevelVerdict(setting, level, accepted, basis, consistent)
