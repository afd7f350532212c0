"""Facts with one home: the exit-code rule, endpoint text, the cookie check, one-line errors."""

from __future__ import annotations

import pytest

from rdprobe.analysis.severity import ExitCode, Severity, exit_code
from rdprobe.protocol import x224
from rdprobe.protocol.endpoint import RDP_PORT, format_endpoint
from rdprobe.protocol.errors import ProtocolError, internal_error, one_line


def test_exit_code_is_the_worst_finding_rule():
    ok, warn = ("rdp", Severity.INFO), ("rdp", Severity.WARNING)
    assert exit_code([]) is ExitCode.PROBLEM
    assert exit_code([ok] * 3) is ExitCode.OK
    assert exit_code([ok, warn]) is ExitCode.PROBLEM
    assert exit_code([("refused", Severity.INFO)]) is ExitCode.PROBLEM
    assert exit_code(iter([ok])) is ExitCode.OK  # any iterable


def test_endpoint_text():
    assert RDP_PORT == 3389
    assert format_endpoint("srv", 3389) == "srv:3389"
    assert format_endpoint("2001:db8::1", 3390) == "[2001:db8::1]:3390"
    from rdprobe.live.target import Target

    assert str(Target("::1", 3389, True)) == "[::1]:3389"


def test_cookie_check_is_the_builder_s():
    assert x224.valid_cookie("rdprobe") and not x224.valid_cookie("a\r\nb")
    assert not x224.valid_cookie("bjørn")
    with pytest.raises(ProtocolError):
        x224.build_request(cookie="a\nb")


def test_one_line_errors():
    assert one_line(OSError("no\n  route   to host")) == "no route to host"
    assert one_line(TimeoutError()) == "TimeoutError"
    assert len(one_line(ValueError("x" * 500))) == 200
    text = internal_error(ValueError("a\nb"))
    assert text == "internal error: ValueError: a b" and "\n" not in text
