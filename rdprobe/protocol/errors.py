"""The one error every sans-IO parser raises on malformed input."""

from __future__ import annotations


class ProtocolError(ValueError):
    """Input that does not parse: where it failed and what was expected there."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.reason = message
        self.offset = offset


class NeedMoreData(ProtocolError):
    """The bytes so far are a valid prefix; more are needed before a PDU is complete."""

    def __init__(self, needed: int, offset: int = 0) -> None:
        super().__init__(f"need {needed} more bytes", offset)
        self.needed = needed
