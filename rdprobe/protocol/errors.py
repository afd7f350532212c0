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


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one line of text: its message with whitespace collapsed (its type's name
    when it has none), at most ``limit`` characters. The one form every result and error shows."""
    return (" ".join(str(exc).split()) or type(exc).__name__)[:limit]


def internal_error(exc: BaseException, limit: int = 200) -> str:
    """A bug's one-line text: ``internal error: Type: message``."""
    return f"internal error: {type(exc).__name__}: {one_line(exc, limit)}"[:limit]
