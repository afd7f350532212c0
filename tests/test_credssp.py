"""CredSSP TSRequest (MS-CSSP 2.2.1), the DER helpers, and the sans-IO half of the NLA probe."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rdprobe.live.nla import interpret_reply, negotiate_request
from rdprobe.protocol import der, ntlm
from rdprobe.protocol.credssp import TSREQUEST_MAX_BYTES, TSRequest, tsrequest_length
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "windows-handshakes.json").read_text())
TSREQUESTS = [
    pytest.param(v, p, id=f"{v['id']}:{p['what']}")
    for v in VECTORS
    for p in v["pdus"]
    if p["what"].startswith("credssp_tsrequest")
]


@pytest.mark.parametrize(("vector", "pdu"), TSREQUESTS)
def test_real_tsrequests_parse_and_rebuild_byte_identically(vector, pdu):
    raw = bytes.fromhex(pdu["hex"])
    request = TSRequest.parse(raw)
    assert tsrequest_length(raw) == len(raw) == pdu["len"]
    if "challenge" in pdu["what"]:
        assert request.version == vector["facts"]["summary"]["tsrequest_version"]
        assert len(request.nego_tokens) == 1
        assert request.nego_tokens[0].startswith(b"NTLMSSP\x00\x02")
    if pdu["what"].endswith("pubkeyauth"):
        assert request.pub_key_auth is not None and not request.nego_tokens
    assert request.build() == raw
    assert TSRequest.parse(raw + b"trailing") == request


def test_round_trip_with_every_field():
    original = TSRequest(
        version=5,
        nego_tokens=(b"first", b"second" * 40),
        auth_info=b"\x01\x02",
        pub_key_auth=b"\x03" * 300,
        error_code=0xC000006D,
        client_nonce=bytes(range(32)),
    )
    raw = original.build()
    assert TSRequest.parse(raw) == original
    assert tsrequest_length(raw) == len(raw)
    assert json.loads(json.dumps(original.to_dict()))["error_code"] == "0xc000006d"


def test_error_code_encoded_unsigned_is_normalised():
    raw = der.sequence(der.explicit(0, der.integer(6)), der.explicit(4, der.integer(0xC0000022)))
    assert TSRequest.parse(raw).error_code == 0xC0000022


def test_non_minimal_length_and_unknown_fields_are_tolerated():
    inner = der.explicit(0, der.integer(3)) + der.explicit(9, der.integer(1))
    raw = b"\x30\x84" + len(inner).to_bytes(4, "big") + inner
    request = TSRequest.parse(raw)
    assert request.version == 3 and request.unknown_fields == (9,)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x31\x03\x02\x01\x01",  # SET, not SEQUENCE
        der.sequence(der.explicit(1, der.sequence())),  # no version
        der.sequence(der.integer(2)),  # untagged field
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x85\x01\x00\x00\x00\x00",  # length of 5 octets
        b"\x30\x83\x01\x00\x01",  # 65537 bytes announced: over the limit
    ],
)
def test_malformed_tsrequests(raw):
    with pytest.raises(ProtocolError):
        TSRequest.parse(raw)


def test_framing_needs_more_data_until_complete():
    raw = bytes.fromhex(TSREQUESTS[1].values[1]["hex"])
    for cut in (0, 1, 2):
        with pytest.raises(NeedMoreData):
            tsrequest_length(raw[:cut])
    assert tsrequest_length(raw[:4]) == len(raw)
    for cut in range(4, len(raw)):
        with pytest.raises(NeedMoreData):
            TSRequest.parse(raw[:cut])
    assert TSREQUEST_MAX_BYTES == 65536


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**31, 0xC000006D])
def test_der_integer_both_ways(value):
    tag, body, end = der.read_tlv(der.integer(value))
    assert tag == der.TAG_INTEGER and der.decode_integer(body) == value
    assert end == len(der.integer(value))


def test_der_oid():
    assert der.decode_oid(bytes.fromhex("2a864886f70d010101")) == "1.2.840.113549.1.1.1"
    assert der.decode_oid(bytes.fromhex("2b0e03020f")) == "1.3.14.3.2.15"
    with pytest.raises(ProtocolError):
        der.decode_oid(b"\x2a\x86")


def test_probe_request_is_a_v6_tsrequest_with_an_anonymous_negotiate():
    request = TSRequest.parse(negotiate_request())
    assert request.version == 6
    assert request.auth_info is None and request.pub_key_auth is None
    negotiate = ntlm.parse_negotiate(request.nego_tokens[0])
    assert negotiate.domain == b"" and negotiate.workstation == b""


def test_interpret_reply_on_real_and_bad_replies():
    for param in TSREQUESTS:
        vector, pdu = param.values
        result = interpret_reply(bytes.fromhex(pdu["hex"]))
        if "challenge" in pdu["what"]:
            assert result.error is None
            assert result.challenge.version_text == vector["facts"]["summary"]["ntlm_version"]
            assert result.tsrequest_version == vector["facts"]["summary"]["tsrequest_version"]
    assert interpret_reply(b"HTTP/1.1 400 Bad Request\r\n").error.startswith("server reply")
    only_error = TSRequest(6, error_code=0xC000006D).build()
    result = interpret_reply(only_error)
    assert result.challenge is None and result.error_code == 0xC000006D
    assert "0xc000006d" in result.error
    assert "NTLMSSP" in interpret_reply(TSRequest(6, (b"kerberos?",)).build()).error
    wrapped = TSRequest(
        6,
        (
            b"\xa1\x10spnego"
            + ntlm.build_challenge(
                ntlm.parse_challenge(
                    TSRequest.parse(bytes.fromhex(TSREQUESTS[1].values[1]["hex"])).nego_tokens[0]
                )
            ),
        ),
    ).build()
    assert interpret_reply(wrapped).challenge.target_name == "PROXYKDC"


def test_hostile_input_raises_only_protocol_error():
    rng = random.Random(5)
    samples = [bytes.fromhex(p.values[1]["hex"]) for p in TSREQUESTS]
    for sample in samples:
        for cut in range(len(sample)):
            try:
                TSRequest.parse(sample[:cut])
            except ProtocolError:
                pass
    for _ in range(1000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 5)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            TSRequest.parse(bytes(data))
        except ProtocolError:
            pass
        result = interpret_reply(bytes(data))  # never raises
        assert (result.challenge is None) == (result.error is not None)
    for _ in range(300):
        try:
            TSRequest.parse(b"\x30" + rng.randbytes(rng.randrange(1, 60)))
        except ProtocolError:
            pass
