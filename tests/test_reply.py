"""The one reply reader (rdprobe.protocol.reply): whole, one byte at a time, trailing bytes and
mutated input, for the confirm sniff, the Connection Request sniff and the ClientHello SNI."""

from __future__ import annotations

import random

import pytest

from rdprobe.protocol import tlsrec, x224
from rdprobe.protocol.reply import (
    BANNER_LIMIT,
    CONFIRM_LIMIT,
    ReplyKind,
    client_hello_record,
    client_hello_sni,
    looks_like_request,
    sniff_reply,
)
from rdprobe.protocol.x224 import NegotiationResponse

CONFIRM = x224.build_confirm(NegotiationResponse(2, 0x1F))


def test_whole_confirm_and_trailing_bytes():
    s = sniff_reply(CONFIRM)
    assert s.kind is ReplyKind.TPDU and s.length == len(CONFIRM)
    assert s.tpdu.negotiation.selected == 2
    assert sniff_reply(CONFIRM + b"\x16\x03\x01").length == len(CONFIRM)  # TLS after the confirm


def test_one_byte_at_a_time_asks_for_exactly_what_is_missing():
    for cut in range(len(CONFIRM)):
        s = sniff_reply(CONFIRM[:cut])
        assert s.kind is None and 0 < s.needed <= len(CONFIRM) - cut, cut
        if cut >= 4:
            assert s.needed == len(CONFIRM) - cut


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n", ReplyKind.NOT_TPKT),
        (b"SSH-2.0-OpenSSH_9.2\r\n", ReplyKind.NOT_TPKT),
        (b"\x03\x01\x00\x10", ReplyKind.NOT_TPKT),  # TLS-ish: version 3, reserved byte set
        (b"\x03\x00" + (CONFIRM_LIMIT + 1).to_bytes(2, "big"), ReplyKind.OVERSIZED),
        (b"\x03\x00\x00\x05", ReplyKind.MALFORMED),  # shorter than any TPDU
        (b"\x03\x00\x00\x0b" + b"\x06\x99" + b"\x00" * 5, ReplyKind.MALFORMED),  # no such TPDU
    ],
)
def test_what_else_a_server_sends(data, kind):
    s = sniff_reply(data)
    assert s.kind is kind
    assert (s.error is not None) is (kind in (ReplyKind.OVERSIZED, ReplyKind.MALFORMED))


def test_mutated_replies_never_raise():
    rng = random.Random(9)
    for _ in range(3000):
        data = bytearray(CONFIRM)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        s = sniff_reply(bytes(data[: rng.randint(0, len(data))]))
        assert s.kind is not None or s.needed > 0


def test_connection_request_sniff():
    cr = x224.build_request(cookie="rdprobe", requested=3)
    assert looks_like_request(cr) is True
    assert looks_like_request(cr + b"trailing") is True
    assert [looks_like_request(cr[:n]) for n in range(6)] == [None, None, None, None, None, None]
    assert looks_like_request(CONFIRM) is False
    assert looks_like_request(b"GET / HTTP/1.1\r\n") is False
    assert BANNER_LIMIT > CONFIRM_LIMIT


def test_client_hello_sni_whole_split_and_mutated():
    hello = tlsrec.build_client_hello(0x0303, [0x002F], server_name="rdp.example.test")
    assert client_hello_record(hello[:4]) is None
    for cut in range(5, len(hello)):
        assert client_hello_record(hello[:cut]) is None
    record = client_hello_record(hello + b"\x17\x03\x03")
    assert record is not None and client_hello_sni(record) == "rdp.example.test"
    assert client_hello_sni(client_hello_record(tlsrec.build_client_hello(0x0303, [0x2F]))) is None
    rng = random.Random(5)
    for _ in range(3000):
        data = bytearray(record)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        name = client_hello_sni(bytes(data[: rng.randint(0, len(data))]))
        assert name is None or isinstance(name, str)
