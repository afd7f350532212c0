"""One home for naming a protocol constant: its enum member's name, or a stated form for a value
the specification does not list (a server may send any number; naming never raises)."""

from __future__ import annotations

import enum


def enum_name(table: type[enum.IntEnum], value: int, unknown: str = "UNKNOWN_{value}") -> str:
    """``table(value).name``, else ``unknown`` formatted with the value (e.g. ``"0x{value:08x}"``)."""
    member = table._value2member_map_.get(value)
    return member.name if member is not None else unknown.format(value=value)
