"""Writing laid-out lines (render.text) to a stream: its width, whether it takes colour, and
whether its encoding has the box-drawing characters.

What users of rich-based tools expect of a stream, without importing rich: colour only on a
terminal, off with ``NO_COLOR`` (no-color.org) or ``TERM=dumb``, on with ``FORCE_COLOR``; the
width of the terminal, ``COLUMNS`` when set, else 80; ASCII boxes where the encoding (a Windows
code page with output redirected) has no box-drawing characters, and every other character it
cannot encode replaced rather than raised. On a Windows console, colour needs its virtual
terminal mode, asked for before each report; where that is refused, no colour.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable

from rdprobe.render.text import ASCII_BOX, BOX, Line

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import TextIO

#: SGR parameters of each word of a style name (render.styles)
_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}
DEFAULT_WIDTH = 80
#: narrower than this, a block is drawn this wide anyway (and the terminal wraps it)
MIN_WIDTH = 40


class Terminal:
    """What one output stream takes. (A plain class: making a dataclass costs ~1 ms of the
    start-up that a refused port's whole answer is measured by.)"""

    __slots__ = ("box", "colour", "encoding", "width")

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        colour: bool = False,
        box: str = BOX,
        encoding: str = "utf-8",
    ) -> None:
        self.width, self.colour, self.box, self.encoding = width, colour, box, encoding

    def render(self, lines: Iterable[Line]) -> str:
        text = "".join(self._line(line) + "\n" for line in lines)
        return text.encode(self.encoding, "replace").decode(self.encoding)

    def _line(self, line: Line) -> str:
        if not self.colour:
            return "".join(t for t, _ in line)
        runs: list[list[str]] = []  # [style, text] of neighbouring spans of one style, merged
        for text, style in line:
            if runs and runs[-1][0] == style:
                runs[-1][1] += text
            else:
                runs.append([style, text])
        out = []
        for style, text in runs:
            codes = ";".join(_SGR[w] for w in style.split() if w in _SGR)
            out.append(f"\x1b[{codes}m{text}\x1b[0m" if codes and text.strip() else text)
        return "".join(out)

    def write(self, stream: TextIO, lines: Iterable[Line]) -> None:
        stream.write(self.render(lines))
        stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or foreign stream
        return False


def _width(stream: TextIO, tty: bool) -> int:
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 20:
        return int(columns)
    if tty:
        try:
            return max(20, os.get_terminal_size(stream.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            pass
    return DEFAULT_WIDTH


def _colour(stream: TextIO, tty: bool) -> bool:
    if os.environ.get("FORCE_COLOR"):
        return True
    if not tty or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return sys.platform != "win32" or _windows_vt(stream)


def _windows_vt(stream: TextIO) -> bool:
    """Turn on the console's virtual terminal processing (Windows 10 1511 and later), which
    makes it read ANSI colour codes; False where the console refuses."""
    if sys.platform != "win32":
        return False
    import ctypes
    import msvcrt

    enable_vt = 0x0004  # ENABLE_VIRTUAL_TERMINAL_PROCESSING
    try:
        handle = msvcrt.get_osfhandle(stream.fileno())
        kernel32 = ctypes.windll.kernel32
        mode = ctypes.c_uint32()
        if not kernel32.GetConsoleMode(handle, ctypes.byref(mode)):
            return False
        return bool(
            mode.value & enable_vt or kernel32.SetConsoleMode(handle, mode.value | enable_vt)
        )
    except (OSError, ValueError, AttributeError):
        return False


def _encoding(stream: TextIO) -> str:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        "".encode(encoding)
    except LookupError:
        return "utf-8"
    return encoding


def for_stream(stream: TextIO) -> Terminal:
    tty = _is_tty(stream)
    encoding = _encoding(stream)
    try:
        BOX.encode(encoding)
        box = BOX
    except UnicodeEncodeError:
        box = ASCII_BOX
    return Terminal(_width(stream, tty), _colour(stream, tty), box, encoding)


def write_blocks(
    stream: TextIO | None,
    terminal: Terminal | None,
    blocks: Callable[[int, str], Iterable[list[Line]]],
) -> None:
    """Blocks laid out for ``stream`` (standard output by default) and written one by one as
    they are made: ``blocks(width, box)`` yields the lines of each."""
    out = stream if stream is not None else sys.stdout
    term = terminal if terminal is not None else for_stream(out)
    for lines in blocks(max(term.width, MIN_WIDTH), term.box):
        term.write(out, lines)
