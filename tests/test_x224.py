"""X.224 / TPKT: real Windows bytes parse to the recorded facts; build and parse agree; hostile
input raises only ProtocolError."""

from __future__ import annotations

import random

import pytest

from conftest import vector_pdus
from rdprobe.protocol import tpkt, x224
from rdprobe.protocol.errors import NeedMoreData, ProtocolError
from rdprobe.protocol.x224 import (
    ConnectionConfirm,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    Protocol,
)

CONFIRMS = vector_pdus("x224_cc")
REQUESTS = vector_pdus("x224_cr")


@pytest.mark.parametrize(("vid", "pdu", "facts"), CONFIRMS, ids=[c[0] for c in CONFIRMS])
def test_every_vector_confirm_parses_to_recorded_facts(vid, pdu, facts):
    cc = x224.parse_confirm(bytes.fromhex(pdu["hex"]))
    recorded = facts["x224_cc"]
    assert cc.dst_ref == int(recorded["dst_ref"], 16)
    assert cc.src_ref == int(recorded["src_ref"], 16)
    assert cc.class_option == recorded["class"]
    if "rdp_neg_rsp" in recorded:
        rsp = recorded["rdp_neg_rsp"]
        assert isinstance(cc.negotiation, NegotiationResponse)
        assert cc.negotiation.selected == rsp["selectedProtocol"]
        assert cc.negotiation.flags == int(rsp["flags"], 16)
        assert cc.negotiation.flag_names == rsp["flags_names"]
    elif "rdp_neg_failure" in recorded:
        fail = recorded["rdp_neg_failure"]
        assert isinstance(cc.negotiation, NegotiationFailure)
        assert cc.negotiation.code_name == fail["failureCode_name"]
    else:
        assert recorded["rdp_neg_data"] is None
        assert cc.legacy


@pytest.mark.parametrize(("vid", "pdu", "facts"), REQUESTS, ids=[c[0] for c in REQUESTS])
def test_every_vector_request_parses(vid, pdu, facts):
    cr = x224.parse_request(bytes.fromhex(pdu["hex"]))
    recorded = facts["x224_cr"]
    if "cookie" in recorded:
        assert "Cookie: mstshash=" + cr.cookie == recorded["cookie"]
    if "routing_token" in recorded:
        assert cr.routing_token is not None
        assert cr.routing_token.startswith(recorded["routing_token"].encode())
    if "rdp_neg_req" in recorded:
        assert cr.negotiation is not None
        assert cr.negotiation.requested == recorded["rdp_neg_req"]["requestedProtocols"]
    else:
        assert cr.negotiation is None


def test_minimal_request_matches_the_spec_bytes():
    built = x224.build_request(requested=int(Protocol.SSL | Protocol.HYBRID))
    assert built.hex() == "030000130ee00000000000010008000" + "3000000"


@pytest.mark.parametrize("requested", [None, 0, 1, 3, 0xB, 0x1F])
@pytest.mark.parametrize("cookie", [None, "Administrator", "x"])
def test_request_round_trip(requested, cookie):
    corr = bytes(range(1, 17)) if requested == 0x1F else None
    built = x224.build_request(cookie=cookie, requested=requested, flags=0x02, correlation_id=corr)
    parsed = x224.parse_request(built)
    assert parsed.cookie == cookie
    assert parsed.correlation_id == corr
    if requested is None:
        assert parsed.negotiation is None
    else:
        assert parsed.negotiation.requested == requested
        assert parsed.negotiation.flags & 0x02


@pytest.mark.parametrize(
    "neg",
    [
        None,
        NegotiationResponse(selected=8, flags=0x1F),
        NegotiationResponse(selected=0, flags=0),
        *[NegotiationFailure(code=int(c)) for c in FailureCode],
    ],
)
def test_confirm_round_trip(neg):
    built = x224.build_confirm(neg, src_ref=0x4321)
    parsed = x224.parse_confirm(built)
    assert parsed.negotiation == neg
    assert parsed.src_ref == 0x4321
    assert parsed.dst_ref == 0


def test_legacy_confirm_is_the_windows_2003_bytes():
    assert x224.build_confirm(None).hex() == "0300000b06d00000123400"


def test_xrdp_disconnect_is_a_data_tpdu_not_a_confirm():
    tpdu = x224.parse_server_tpdu(bytes.fromhex("0300000902f0802180"))
    assert isinstance(tpdu, x224.DataTpdu)
    assert tpdu.user_data == b"\x21\x80"
    with pytest.raises(ProtocolError):
        x224.parse_confirm(bytes.fromhex("0300000902f0802180"))


def test_failure_names_and_unknown_code():
    assert NegotiationFailure(code=5).code_name == "HYBRID_REQUIRED_BY_SERVER"
    assert NegotiationFailure(code=99).code_name == "UNKNOWN_FAILURE_99"
    assert x224.protocol_name(0x40 | 0x1) == "SSL|0x40"


def test_tpkt_framing_needs_more_then_splits():
    pdu = x224.build_confirm(NegotiationResponse(selected=1))
    for cut in range(len(pdu)):
        with pytest.raises(NeedMoreData):
            tpkt.split(pdu[:cut])
    whole, rest = tpkt.split(pdu + b"\x03\x00")
    assert whole == pdu and rest == b"\x03\x00"


def test_tpkt_rejects_oversized_and_non_tpkt():
    with pytest.raises(ProtocolError, match="exceeds"):
        tpkt.frame_length(b"\x03\x00\xff\xff", limit=1024)
    with pytest.raises(ProtocolError, match="not TPKT"):
        tpkt.frame_length(b"HTTP/1.1 400")
    with pytest.raises(ProtocolError, match="shorter"):
        tpkt.frame_length(b"\x03\x00\x00\x04")


def test_hostile_confirms_raise_only_protocol_error():
    rng = random.Random(2026)
    seeds = [bytes.fromhex(c[1]["hex"]) for c in CONFIRMS]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1:
                del data[rng.randrange(len(data) + 1) :]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        for parse in (x224.parse_server_tpdu, x224.parse_request):
            try:
                parse(bytes(data))
            except ProtocolError:
                pass


def test_confirm_with_trailing_bytes_keeps_them():
    cc = x224.parse_confirm(bytes.fromhex("030000140fd000001234000200080001000000ee"))
    assert isinstance(cc, ConnectionConfirm)
    assert cc.negotiation == NegotiationResponse(selected=1)
    assert cc.extra == b"\xee"
