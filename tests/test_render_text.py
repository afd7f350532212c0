"""The check report's own layout (render.text, render.terminal, render.human): every line fits,
nothing is dropped, a server's control characters stay inert, and the stream decides colour,
width and box characters as users of rich-based tools expect."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdprobe.analysis.consistency import violations
from rdprobe.analysis.findings import Finding
from rdprobe.analysis.severity import Severity
from rdprobe.emulate.server import serve
from rdprobe.live.check import CheckOptions, check_target
from rdprobe.live.target import Target
from rdprobe.live.timing import Timeouts
from rdprobe.render import human
from rdprobe.render.terminal import Terminal, for_stream
from rdprobe.render.text import ASCII_BOX, BOX, boxed, clean, columns, fit, paragraphs, wrap

SGR = re.compile(r"\x1b\[[0-9;]*m")
TIMEOUTS = Timeouts(connect=2.0, read=3.0, total=20.0)


def plain(lines) -> list[str]:
    return ["".join(t for t, _ in line) for line in lines]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def in_order(needle: str, haystack: str) -> bool:
    rest = iter(haystack)
    return all(c in rest for c in needle)


words = st.lists(
    st.text(alphabet="abcXYZ,|/\\-_.0123456789", min_size=1, max_size=40), min_size=0, max_size=30
)


@settings(max_examples=300, deadline=None)
@given(words=words, width=st.integers(1, 50), hang=st.integers(0, 8), indent=st.integers(0, 3))
def test_wrap_fits_every_line_and_keeps_every_character(words, width, hang, indent):
    text = " " * indent + " ".join(words)
    lines = plain(wrap([(text, "bold")], width, hang=hang))
    limit = max(width, hang + 1)
    assert all(len(line) <= limit for line in lines)
    assert squeeze("".join(lines)) == squeeze(text)  # nothing dropped, nothing added
    for line in lines[1:]:
        assert line.startswith(" " * hang)
    for word in words:  # a word that fits on any line of the paragraph is never cut
        if len(word) <= limit - max(hang, indent) and not re.search(r"[,|/\\]", word):
            assert any(re.search(rf"(^| ){re.escape(word)}( |$)", ln) for ln in lines), word


def test_wrap_breaks_at_spaces_then_inside_long_words_after_a_comma():
    lines = plain(wrap([("flags 0x0f EXTENDED_CLIENT_DATA,DYNVC_GFX_PROTOCOL,RESERVED", "")], 24))
    assert lines == ["flags 0x0f", "EXTENDED_CLIENT_DATA,", "DYNVC_GFX_PROTOCOL,", "RESERVED"]
    assert plain(wrap([("  Why: a b", "dim")], 8, hang=4)) == ["  Why: a", "    b"]
    assert plain(wrap([("x" * 10, "")], 4)) == ["xxxx", "xxxx", "xx"]


def test_styles_follow_their_words_across_lines():
    lines = wrap([("error", "red"), (" ", ""), ("long words here", "bold")], 10)
    assert lines[0] == [("error", "red"), (" ", ""), ("long", "bold")]
    assert lines[1] == [("words", "bold"), (" ", "bold"), ("here", "bold")]


def test_control_characters_are_made_visible():
    assert clean("a\x1b[2Jb\x07\tc\x9b") == "a\\x1b[2Jb\\x07 c\\x9b"
    assert clean("admin\u202egpj.exe\u200b") == "admin\\u202egpj.exe\\u200b"  # no reordering
    assert clean("Zürich — 東京") == "Zürich — 東京"  # printable text stays as it is
    (line,) = plain(wrap([("CN=\x1b]0;owned\x07", "")], 80))
    assert "\x1b" not in line and "\x07" not in line and line == "CN=\\x1b]0;owned\\x07"


def test_paragraphs_columns_fit_and_box():
    assert plain(paragraphs([("a b\nc", ""), ("d\n", "")], 10)) == ["a b", "cd", ""]
    assert fit([10, 30, 5], 30, gap=2, shrink=1) == [10, 11, 5]
    assert fit([10, 30, 10], 20, gap=2, shrink=1) == [5, 5, 6]  # then the widest
    assert fit([10, 3], 30, gap=2, shrink=1) == [10, 3]
    rows = columns(
        [[[[("a", "")]], [[("1", "")], [("2", "")]]]], [3, 4], gap=" ", justify=["left", "right"]
    )
    assert plain(rows) == ["a      1", "       2"]
    box = plain(boxed([[("hi", "")]], 8, "red"))
    assert box == ["╭──────╮", "│ hi   │", "╰──────╯"]
    assert plain(boxed([], 6, "", ASCII_BOX)) == ["+----+", "+----+"]


class FakeStream(io.StringIO):
    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self._tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    def fileno(self) -> int:
        raise io.UnsupportedOperation


@pytest.fixture
def env(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_stream_decides_colour(env):
    assert for_stream(FakeStream(tty=True)).colour
    assert not for_stream(FakeStream(tty=False)).colour
    env.setenv("FORCE_COLOR", "1")
    assert for_stream(FakeStream(tty=False)).colour
    env.delenv("FORCE_COLOR")
    env.setenv("TERM", "dumb")
    assert not for_stream(FakeStream(tty=True)).colour
    env.delenv("TERM")
    env.setenv("NO_COLOR", "")
    assert not for_stream(FakeStream(tty=True)).colour


def test_the_stream_decides_width_and_box(env):
    assert for_stream(FakeStream(tty=False)).width == 80
    assert for_stream(FakeStream(tty=True)).width == 80  # no size to ask: 80
    env.setenv("COLUMNS", "132")
    assert for_stream(FakeStream(tty=False)).width == 132
    env.setenv("COLUMNS", "junk")
    assert for_stream(FakeStream(tty=False)).width == 80
    assert for_stream(FakeStream(False, "cp1252")).box == ASCII_BOX  # redirected on Windows
    assert for_stream(FakeStream(False, "utf-8")).box == BOX
    assert for_stream(FakeStream(False, "no-such-codec")).encoding == "utf-8"


def test_what_the_encoding_lacks_is_replaced_not_raised():
    term = Terminal(encoding="ascii", box=ASCII_BOX)
    assert term.render([[("Service: IIS — 10.0 ✓", "")]]) == "Service: IIS ? 10.0 ?\n"


async def _reports():
    """A refused port and two listeners, checked in full."""
    from rig.ports import loopback_address

    opts = CheckOptions(timeouts=TIMEOUTS)
    reports = await check_target(Target(loopback_address(), 3389, True), opts)
    assert reports[0].outcome == "refused"
    for profile in ("win2012-tls-nla", "rdp-proprietary"):
        async with await serve(profile, "127.0.0.1", 0) as server:
            reports += await check_target(Target("127.0.0.1", server.port, True), opts)
    return reports


@pytest.fixture(scope="module")
def reports():
    import asyncio

    return asyncio.run(_reports())


@pytest.mark.parametrize("width", [40, 57, 80, 132])
@pytest.mark.parametrize("verbose", [False, True])
def test_report_fits_its_width_and_says_every_word(reports, width, verbose):
    for report in reports:
        assert not violations(report)
        out = io.StringIO()
        human.render([report], out, verbose=verbose, terminal=Terminal(width=width))
        lines = out.getvalue().splitlines()
        assert {len(line) for line in lines} == {width}
        inside = squeeze("".join(line[2:-2] for line in lines[1:-1]))
        for f in report.findings:
            assert squeeze(f.title) in inside
            told = (f.cause, f.fix, f.confirm) if verbose or f.severity >= Severity.WARNING else ()
            for text in filter(None, told):
                assert squeeze(text) in inside, (f.id, width)
        for attempt in report.observation.attempts if report.outcome == "rdp" else ():
            if width >= 80:  # the table's first column is as wide as its longest label
                assert squeeze(attempt.label) in inside
            else:  # cells wrapped side by side: the label's characters still all there, in order
                assert in_order(squeeze(attempt.label), inside)
        for name, facts in report.observation.stages.items():
            if isinstance(facts, dict) and facts.get("summary") and name != "config":
                assert squeeze(facts["summary"]) in inside


def test_a_code_page_without_box_characters_gets_ascii_only(reports):
    out = io.BytesIO()
    stream = io.TextIOWrapper(out, encoding="cp1252", newline="")
    human.render([reports[1]], stream)  # as on a Windows console redirected to a file
    stream.flush()
    text = out.getvalue().decode("cp1252")
    assert text.startswith("+---") and "| Negotiation" in text
    assert "?" * 3 not in text and "-" * 14 + "  " + "-" * 15 in text  # the table's rule


def test_colour_is_only_styles_around_the_same_text(reports):
    report = reports[1]
    coloured, bare = io.StringIO(), io.StringIO()
    human.render([report], coloured, terminal=Terminal(colour=True))
    human.render([report], bare, terminal=Terminal(colour=False))
    assert "\x1b[" not in bare.getvalue()
    assert "\x1b[1;31m" in coloured.getvalue() or "\x1b[33m" in coloured.getvalue()
    assert SGR.sub("", coloured.getvalue()) == bare.getvalue()
    # a phrase of one style is one run of it, so a terminal's text search finds the phrase
    refused = io.StringIO()
    human.render([reports[0]], refused, terminal=Terminal(width=120, colour=True))
    assert f"\x1b[1m{reports[0].findings[0].title}\x1b[0m" in refused.getvalue()


def test_a_hostile_finding_text_cannot_reach_the_terminal_raw(reports):
    report = reports[1]
    first = report.findings[0]  # a title filled from evidence a server chose (its CN)
    evil = Finding(replace(first.spec, title="CN={cn}"), {"cn": "\x1b]0;owned\x07\x1b[2J"})
    hostile = replace(report, findings=(evil, *report.findings[1:]))
    out = io.StringIO()
    human.render([hostile], out, terminal=Terminal(colour=True))
    assert "\x07" not in out.getvalue() and "\x1b]" not in out.getvalue()
    assert "\\x1b]0;owned\\x07\\x1b[2J" in squeeze(SGR.sub("", out.getvalue()))
    assert set(re.findall(r"\x1b.", out.getvalue())) == {"\x1b["}  # our SGR codes, no others
