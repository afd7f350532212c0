"""Styled text laid out for a terminal, without rich: wrapping, columns and a box.

The check report goes through this instead of rich because rich's import alone (~0.1 s on a
slow 2-core machine) cost more than the whole answer to a refused port (issue 12: no slower than
``nmap -Pn -p3389``). A line is a list of spans, each a piece of text and a style name of
render.styles ("bold red", "dim", "" for none); render.terminal turns lines into characters.
Every character counts as one column: the report's own words are ASCII, and a server's strings
reach here with their control and invisible format characters made visible (``clean``), so a
hostile certificate name cannot move the cursor, recolour the screen or reorder what it shows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TYPE_CHECKING = False  # not typing's: see rdprobe/__init__.py (a refused port loads no typing)
if TYPE_CHECKING:
    from typing import Literal

    Justify = Literal["left", "right"]

Span = tuple[str, str]
Line = list[Span]

#: C0 and C1 controls but the tab, and the invisible format characters that reorder or hide
#: text on a terminal (zero-width, bidirectional embeddings, overrides and isolates, BOM)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_SPACES = re.compile(r"( +)")
#: a piece of a long word that ends where a line may break inside it (after , | / or \\)
_PIECE = re.compile(r"[^,|/\\]*[,|/\\]|.+")


def clean(text: str) -> str:
    """``text`` with tabs as spaces and every other control or invisible format character
    written as ``\\xNN`` or ``\\uNNNN``."""
    return _CONTROL.sub(_visible, text.replace("\t", " "))


def _visible(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def width_of(line: Line) -> int:
    return sum(len(t) for t, _ in line)


def wrap(spans: Sequence[Span], width: int, *, hang: int = 0) -> list[Line]:
    """One paragraph (no newline in it) broken at spaces into lines of at most ``width``
    columns; continuation lines start with ``hang`` spaces, and spaces that begin the paragraph
    are kept (an indent). A word longer than a line breaks after a comma, bar or slash in it,
    and a piece longer than a line is cut where the line ends: nothing is dropped or replaced
    by an ellipsis."""
    width = max(width, hang + 1)
    lines: list[Line] = [[]]
    used = start = 0  # columns used on the last line; how many of them are its indent
    gap: Span | None = None  # spaces since the last word: written only before another word

    def newline() -> None:
        nonlocal used, start, gap
        lines.append([(" " * hang, "")] if hang else [])
        used = start = hang
        gap = None

    def place(word: str, style: str) -> bool:
        """Put ``word`` on this line, or alone at the start of the next: False if it fits on
        neither."""
        nonlocal used, gap
        sep = len(gap[0]) if gap else 0
        if used + sep + len(word) > width:
            if used == start or len(word) > width - hang:
                return False
            newline()
            sep = 0
        if gap:
            lines[-1].append(gap)
        lines[-1].append((word, style))
        used, gap = used + sep + len(word), None
        return True

    for text, style in spans:
        for token in _SPACES.split(clean(text)):
            if not token:
                continue
            if token[0] == " ":
                if len(lines) == 1 and used == start:  # an indent, narrower than the line
                    token = token[: max(0, width - 1 - used)]
                    if token:
                        lines[0].append((token, style))
                        used = start = used + len(token)
                else:
                    gap = (token, style)
                continue
            if place(token, style):
                continue
            for piece in _PIECE.findall(token):
                while not place(piece, style):  # longer than any line: cut at its end
                    room = width - used - (len(gap[0]) if gap else 0)
                    if room <= 0:
                        newline()
                        continue
                    place(piece[:room], style)
                    piece = piece[room:]
                    newline()
    return lines


def paragraphs(spans: Sequence[Span], width: int) -> list[Line]:
    """``spans`` that may hold newlines, each paragraph wrapped on its own."""
    out: list[Line] = []
    current: list[Span] = []
    for text, style in spans:
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                out.extend(wrap(current, width))
                current = []
            if part:
                current.append((part, style))
    out.extend(wrap(current, width))
    return out


def pad(line: Line, width: int, justify: Justify = "left") -> Line:
    room = width - width_of(line)
    if room <= 0:
        return line
    fill = (" " * room, "")
    return [fill, *line] if justify == "right" else [*line, fill]


def columns(
    cells: Sequence[Sequence[list[Line]]],
    widths: Sequence[int],
    *,
    gap: str = "  ",
    justify: Sequence[Justify] = (),
) -> list[Line]:
    """Rows of cells (each a list of lines, already wrapped to its column) side by side."""
    out: list[Line] = []
    for row in cells:
        for i in range(max((len(c) for c in row), default=0)):
            line: Line = []
            for col, cell in enumerate(row):
                if col:
                    line.append((gap, ""))
                how = justify[col] if col < len(justify) else "left"
                part = cell[i] if i < len(cell) else []
                line.extend(pad(part, widths[col], how))
            while line and not line[-1][0].strip():  # no trailing blanks
                line.pop()
            out.append(line)
    return out


#: the narrowest a column gets
MIN_COLUMN = 4


def fit(natural: Sequence[int], total: int, *, gap: int, shrink: int) -> list[int]:
    """Column widths for a row of ``total`` columns, gaps included: the natural ones, with the
    ``shrink`` column narrowed first (down to 8), then the widest, one column at a time (down to
    MIN_COLUMN)."""
    widths = list(natural)
    room = total - gap * (len(widths) - 1)
    over = sum(widths) - room
    if over > 0:
        widths[shrink] = max(min(8, widths[shrink]), widths[shrink] - over)
    while sum(widths) > room and max(widths) > MIN_COLUMN:
        widest = widths.index(max(widths))
        widths[widest] -= 1
    return widths


BOX = "╭─╮│╰╯"
ASCII_BOX = "+-+|++"


def boxed(
    lines: Sequence[Line], width: int, style: str, box: str = BOX, *, title: str = ""
) -> list[Line]:
    """``lines`` (each at most ``width`` - 4 columns) in a box ``width`` columns wide, one
    space inside each side; a ``title`` sits in the top border, at its left."""
    tl, h, tr, v, bl, br = (box[i] for i in range(6))
    inner = width - 4
    top = h * (width - 2)
    if title:
        label = f" {clean(title)} "[: width - 4]
        top = h + label + h * (width - 3 - len(label))
    out: list[Line] = [[(tl + top + tr, style)]]
    for line in lines:
        out.append([(v + " ", style), *pad(line, inner), (" " + v, style)])
    out.append([(bl + h * (width - 2) + br, style)])
    return out
