"""The end-of-sweep summary (rdprobe.sweep.summary): counted from rows, laid out without rich."""

from __future__ import annotations

import io

from rdprobe.sweep.summary import Summary

LONG = (
    "Negotiate: TLS or Standard RDP Security, NLA not required; clients without negotiation "
    "get a Connection Confirm"
)


def _row(outcome: str, setting: str | None = None, findings: tuple[str, ...] = ()) -> dict:
    row: dict = {"outcome": outcome, "findings": [{"id": f} for f in findings]}
    if setting:
        row["setting"] = {"summary": setting}
    return row


def _text(summary: Summary, width: int) -> list[str]:
    return ["".join(t for t, _ in line) for line in summary.lines(width)]


def test_counts_under_titles_most_first_ties_by_name():
    s = Summary()
    s.add(_row("rdp", LONG, ("tls.legacy_versions_enabled", "cert.self_signed", "rdp.answered")))
    s.add(_row("rdp", LONG, ("cert.untrusted", "cert.self_signed")))
    s.add(_row("refused"), times=12)
    assert _text(s, 200) == [
        "by outcome",
        " refused  12",
        " rdp       2",
        "by security setting",
        f" {LONG}  2",
        "by certificate problem",
        " cert.self_signed             2",
        " cert.untrusted               1",
        " tls.legacy_versions_enabled  1",
    ]
    assert list(s.to_dict()["by_certificate_problem"]) == [
        "cert.self_signed",
        "cert.untrusted",
        "tls.legacy_versions_enabled",
    ]


def test_a_long_value_wraps_within_the_width_and_keeps_every_word():
    s = Summary()
    s.add(_row("rdp", LONG), times=300)
    lines = _text(s, 60)
    setting = lines[lines.index("by security setting") + 1 :]
    assert all(len(line) <= 60 for line in lines)
    assert setting[0].endswith("  300") and setting[0].startswith(" Negotiate:")
    assert " ".join(w for line in setting for w in line.split() if w != "300") == LONG


def test_a_servers_control_characters_are_shown_not_sent_to_the_terminal():
    s = Summary()
    s.add({"outcome": "rdp", "setting": {"summary": "evil\x1b[2Jname"}})
    out = io.StringIO()
    s.render(out, "rdprobe sweep: 1 target:ports")
    assert "\x1b" not in out.getvalue()
    assert out.getvalue().startswith("rdprobe sweep: 1 target:ports\nby outcome\n rdp  1\n")
