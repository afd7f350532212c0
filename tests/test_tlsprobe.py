"""Pinned-version ClientHellos and the verdict on the server's answer (rdprobe.protocol.tlsprobe)."""

from __future__ import annotations

import random
import struct

import pytest

from rdprobe.protocol import tlsprobe, tlsrec
from tests.fuzzkit.mutate import mutate
from tests.test_tlsrec import FLIGHTS

#: RFC 8446 §4.1.3: the ServerHello.random of a HelloRetryRequest.
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def hello_fields(raw: bytes) -> dict:
    """The fields of a built ClientHello record, parsed here independently of the builder."""
    (record,), used = tlsrec.parse_records(raw)
    assert used == len(raw)
    (message,), rest = tlsrec.parse_handshakes(record.fragment)
    assert rest == len(record.fragment) and message.msg_type == tlsrec.HandshakeType.client_hello
    body = message.body
    pos = 34
    session_id = body[pos + 1 : pos + 1 + body[pos]]
    pos += 1 + body[pos]
    n = struct.unpack_from("!H", body, pos)[0]
    suites = struct.unpack_from(f"!{n // 2}H", body, pos + 2)
    pos += 2 + n
    assert body[pos : pos + 2] == b"\x01\x00"  # null compression only
    pos += 2
    n = struct.unpack_from("!H", body, pos)[0]
    assert pos + 2 + n == len(body)
    exts, pos = {}, pos + 2
    while pos < len(body):
        ext_type, size = struct.unpack_from("!HH", body, pos)
        assert ext_type not in exts
        exts[ext_type] = body[pos + 4 : pos + 4 + size]
        pos += 4 + size
    assert pos == len(body)
    return {
        "record_version": record.version,
        "legacy_version": struct.unpack_from("!H", body)[0],
        "session_id": session_id,
        "suites": suites,
        "extensions": exts,
        "size": 4 + len(body),
    }


@pytest.mark.parametrize("name", list(tlsprobe.PINNED_VERSIONS))
def test_pinned_hello_offers_only_its_version(name):
    code, suites = tlsprobe.PINNED_VERSIONS[name]
    got = hello_fields(tlsprobe.pinned_hello(name))
    assert got["record_version"] == 0x0301
    assert not 256 <= got["size"] < 512  # RFC 7685 padding applied where needed
    exts = got["extensions"]
    if code == 0x0304:
        assert got["legacy_version"] == 0x0303 and len(got["session_id"]) == 32
        assert exts[tlsrec.EXT_SUPPORTED_VERSIONS] == b"\x02\x03\x04"  # 1.3 and nothing else
        share = exts[tlsrec.EXT_KEY_SHARE]
        assert share[:6] == struct.pack("!HHH", 36, 0x001D, 32) and len(share) == 38
        assert got["suites"] == (0x1301, 0x1302, 0x1303)  # no SCSV in a 1.3-only hello
    else:
        assert got["legacy_version"] == code and got["session_id"] == b""
        assert tlsrec.EXT_SUPPORTED_VERSIONS not in exts and tlsrec.EXT_KEY_SHARE not in exts
        assert got["suites"] == (*suites, 0x00FF)
        assert not any(0x1301 <= s <= 0x1303 for s in got["suites"])
    assert (tlsrec.EXT_SIGNATURE_ALGORITHMS in exts) is (code >= 0x0303)
    groups = exts[tlsrec.EXT_SUPPORTED_GROUPS]
    assert b"\x00\x1d" in groups[2:] and b"\x00\x17" in groups[2:]


def test_legacy_versions_offer_the_old_suites_windows_answers():
    for name in ("TLSv1", "TLSv1.1"):
        suites = tlsprobe.PINNED_VERSIONS[name][1]
        assert {0x002F, 0x0035, 0x000A, 0x0005, 0x0004, 0xC013, 0xC014} <= set(suites)
        assert not {0x009C, 0x009D, 0xC02F, 0xC030} & set(suites)  # AEAD needs TLS 1.2
    tls12 = tlsprobe.PINNED_VERSIONS["TLSv1.2"][1]
    assert {0x009C, 0x009D, 0xC02F, 0xC030, 0x000A, 0x0005} <= set(tls12)


def test_tls13_key_share_and_random_are_given_or_fresh():
    fixed = tlsrec.build_client_hello(0x0304, (0x1301,), random=bytes(32), key_share=b"\x09" * 32)
    assert fixed == tlsrec.build_client_hello(
        0x0304, (0x1301,), random=bytes(32), key_share=b"\x09" * 32
    )
    assert hello_fields(fixed)["extensions"][tlsrec.EXT_KEY_SHARE][6:] == b"\x09" * 32
    assert tlsprobe.pinned_hello("TLSv1.3") != tlsprobe.pinned_hello("TLSv1.3")
    with pytest.raises(ValueError, match="32 bytes"):
        tlsrec.build_client_hello(0x0304, (0x1301,), key_share=b"\x00" * 31)


@pytest.mark.parametrize("version", [0x0301, 0x0303, 0x0304])
def test_padding_keeps_hellos_out_of_256_to_511(version):
    sizes = set()
    for n in range(0, 260, 3):
        got = hello_fields(tlsrec.build_client_hello(version, tuple(range(0x0100, 0x0100 + n))))
        assert not 256 <= got["size"] < 512
        sizes.add(got["size"])
    assert min(sizes) < 256 and 512 in sizes and max(sizes) > 512  # all three ranges seen


def server_hello(version: int, *, random_: bytes = bytes(32), tls13: bool = False) -> bytes:
    """A ServerHello record: legacy_version *version*, or 1.2 + supported_versions when tls13."""
    exts = struct.pack("!HHH", 43, 2, 0x0304) if tls13 else b""
    body = struct.pack("!H", 0x0303 if tls13 else version) + random_ + b"\x00"
    body += struct.pack("!H", 0x1301 if tls13 else 0x002F) + b"\x00"
    body += struct.pack("!H", len(exts)) + exts
    handshake = bytes([2]) + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0303, len(handshake)) + handshake


ALERT_70 = struct.pack("!BHHBB", 21, 0x0303, 2, 2, 70)  # fatal protocol_version
FLIGHT_10, FLIGHT_12 = (
    next(p.values[1] for p in FLIGHTS if tlsrec.parse_server_flight(p.values[1]).version == v)
    for v in ("TLSv1", "TLSv1.2")
)

CASES = [
    ("TLSv1", FLIGHT_10, "accepted"),  # Windows' own TLS 1.0 flight (recorded)
    ("TLSv1.2", FLIGHT_12, "accepted"),
    ("TLSv1.2", FLIGHT_10, "refused"),  # a 1.0 ServerHello to a 1.2 hello: 1.2 not spoken
    ("TLSv1", FLIGHT_12, "error: server chose TLSv1.2 to a TLSv1 hello"),
    ("TLSv1.3", server_hello(0x0303, tls13=True), "accepted"),
    ("TLSv1.3", server_hello(0x0303, tls13=True, random_=HRR_RANDOM), "accepted"),  # HRR
    ("TLSv1.3", FLIGHT_12, "refused"),  # a TLS 1.2 server ignores supported_versions
    ("TLSv1.1", ALERT_70, "refused"),
    ("TLSv1.1", server_hello(0x0302), "accepted"),
]


@pytest.mark.parametrize(("name", "data", "verdict"), CASES)
def test_verdict_whole_byte_at_a_time_and_with_trailing_bytes(name, data, verdict):
    whole = tlsprobe.PinnedAnswer(name)
    assert whole.feed(data) == verdict
    dripped = tlsprobe.PinnedAnswer(name)
    got = [dripped.feed(data[i : i + 1]) for i in range(len(data))]
    first = next(i for i, v in enumerate(got) if v is not None)
    assert all(v == verdict for v in got[first:])  # decided once, then kept
    assert dripped.verdict == verdict and dripped.closed() == verdict
    trailing = tlsprobe.PinnedAnswer(name)
    assert trailing.feed(data + b"\x17\x03\x03\x00\x05hello" + bytes(40)) == verdict


@pytest.mark.parametrize(("name", "data", "verdict"), CASES[:6])
def test_no_verdict_before_the_server_hello_is_whole(name, data, verdict):
    answer = tlsprobe.PinnedAnswer(name)
    hello_end = 5 + int.from_bytes(data[3:5], "big")  # these start with a ServerHello record
    for i in range(hello_end - 1):
        assert answer.feed(data[i : i + 1]) is None
    assert answer.feed(data[hello_end - 1 : hello_end]) == verdict


def test_closes_and_garbage():
    assert tlsprobe.PinnedAnswer("TLSv1").closed() == "refused"  # SCHANNEL closes on no
    cut = tlsprobe.PinnedAnswer("TLSv1.2")
    assert cut.feed(FLIGHT_12[:20]) is None and cut.closed() == "refused"
    http = tlsprobe.PinnedAnswer("TLSv1.2")
    assert http.feed(b"HTTP/1.1 400 Bad Request\r\n").startswith("error: not TLS")
    assert http.feed(FLIGHT_12) == http.verdict  # decided: later bytes change nothing
    bad = tlsprobe.PinnedAnswer("TLSv1.2")
    broken = bytearray(server_hello(0x0303))
    broken[5 + 4 + 2 + 32] = 200  # session_id length past the message
    assert bad.feed(bytes(broken)).startswith("error: handshake message 2")
    flood = tlsprobe.PinnedAnswer("TLSv1.2", limit=1000)
    chunk = struct.pack("!BHH", 22, 0x0303, 300) + bytes([20]) + (296).to_bytes(3, "big")
    verdict = None
    for _ in range(10):
        verdict = flood.feed(chunk + bytes(296))
    assert verdict == "error: no ServerHello in the first 1000 bytes"


def test_mutated_answers_give_a_verdict_and_never_raise():
    rng = random.Random(12)
    seeds = [data for _n, data, _v in CASES]
    verdicts = set()
    for _ in range(3000):
        name = rng.choice(list(tlsprobe.PINNED_VERSIONS))
        data = mutate(rng, rng.choice(seeds))
        answer = tlsprobe.PinnedAnswer(name)
        step = rng.randint(1, 64)
        for i in range(0, len(data), step):
            answer.feed(data[i : i + step])
        verdict = answer.closed()
        assert verdict in ("accepted", "refused") or verdict.startswith("error: ")
        assert "\n" not in verdict and len(verdict) < 300
        verdicts.add(verdict.split(":")[0])
    assert {"accepted", "refused", "error"} <= verdicts
