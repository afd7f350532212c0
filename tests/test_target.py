"""Target parsing: every accepted form, and one clear error for each bad one."""

from __future__ import annotations

import pytest

from rdprobe.live.target import Target, TargetError, parse_ports, parse_target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server", Target("server", 3389, False)),
        ("Server.Example.COM.", Target("server.example.com", 3389, False)),
        ("server:3390", Target("server", 3390, False)),
        ("127.0.0.1", Target("127.0.0.1", 3389, True)),
        ("127.0.0.1:1", Target("127.0.0.1", 1, True)),
        ("::1", Target("::1", 3389, True)),
        ("[::1]:3390", Target("::1", 3390, True)),
        ("[fe80::1%lo]:3389", Target("fe80::1%lo", 3389, True)),
        ("[2001:db8::1]", Target("2001:db8::1", 3389, True)),
        ("  host-1  ", Target("host-1", 3389, False)),
    ],
)
def test_accepted_forms(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("host:0", "outside"),
        ("host:65536", "outside"),
        ("host:abc", "not a number"),
        ("[::1", "missing ']'"),
        ("[::1]x", "expected ':port'"),
        ("[127.0.0.1]:3389", "not an IPv6"),
        ("1.2.3.999", "not a valid IPv4"),
        ("bad_host!", "not a valid host name"),
        ("a b", "not a host"),
        ("10.0.0.0/24", "not a host"),
        (":::1::", "not an IPv6"),
    ],
)
def test_rejected_forms_have_one_line_reason(text, message):
    with pytest.raises(TargetError, match=message) as info:
        parse_target(text)
    assert "\n" not in str(info.value)


def test_str_brackets_ipv6():
    assert str(parse_target("[::1]:3390")) == "[::1]:3390"
    assert str(parse_target("host")) == "host:3389"


def test_port_lists():
    assert parse_ports("3389,3388-3390, 3389") == [3389, 3388, 3390]
    for bad in ("", "3390-3388", "1,,2", "0", "70000", "a-b"):
        with pytest.raises(TargetError):
            parse_ports(bad)
