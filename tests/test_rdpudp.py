"""MS-RDPEUDP SYN / SYN+ACK against the datagrams in Zeek's rdpeudp captures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import scapy.layers.inet
import scapy.layers.inet6  # noqa: F401
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from rdprobe.protocol import rdpudp
from rdprobe.protocol.errors import ProtocolError

CAPTURES = Path(__file__).parent.parent / "captures/zeek"
SYN, ACK, SYNEX, CORR = 0x0001, 0x0004, 0x1000, 0x0800


def datagrams(name: str) -> list[tuple[int, bytes]]:
    """(source port, UDP payload) of each datagram."""
    return [(p[UDP].sport, bytes(p[UDP].payload)) for p in rdpcap(str(CAPTURES / name)) if UDP in p]


@pytest.mark.parametrize(
    ("capture", "client_version", "server_version"),
    [
        ("rdpeudp-handshake-success.pcap", 0x0003, 0x0002),
        ("rdpeudp2-handshake-success.pcap", 0x0101, 0x0101),
    ],
)
def test_syn_and_syn_ack_from_captures(
    capture: str, client_version: int, server_version: int
) -> None:
    grams = datagrams(capture)
    syn = rdpudp.parse_syn(grams[0][1])
    assert grams[0][0] != 3389 and not syn.is_syn_ack
    assert syn.flags == SYN | CORR | SYNEX and syn.ack == 0xFFFFFFFF and syn.window == 64
    assert (syn.up_mtu, syn.down_mtu, syn.length) == (1232, 1232, 1232)
    assert syn.version == client_version and syn.synex_flags == 1
    assert syn.correlation_id is not None and len(syn.correlation_id) == 16
    answer = rdpudp.parse_syn(grams[1][1])
    assert grams[1][0] == 3389 and answer.is_syn_ack
    assert answer.flags == SYN | ACK | SYNEX and answer.ack == syn.isn
    assert (answer.up_mtu, answer.down_mtu, answer.length) == (1232, 1232, 1232)
    assert answer.version == server_version and answer.mtus_in_range
    assert answer.correlation_id is None
    ratio = len(grams[1][1]) / len(grams[0][1])
    assert ratio == 1.0  # the spec-padded SYN makes the first exchange 1:1
    assert answer.to_dict()["flag_names"] == ["SYN", "ACK", "SYNEX"]
    # what comes after the handshake is not a SYN
    with pytest.raises(ProtocolError, match="not a SYN"):
        rdpudp.parse_syn(grams[2][1])


def test_failed_handshake_is_three_identical_syns() -> None:
    grams = datagrams("rdpeudp-handshake-fail.pcap")
    parsed = [rdpudp.parse_syn(g) for _, g in grams]
    assert len(parsed) == 3 and len({p.isn for p in parsed}) == 1  # retransmissions
    assert parsed[0].version == 0x0002


def test_build_matches_capture_layout() -> None:
    _, captured = datagrams("rdpeudp-handshake-success.pcap")[0]
    syn = rdpudp.parse_syn(captured)
    built = rdpudp.build_syn(isn=syn.isn, version=0x0003, correlation_id=syn.correlation_id)
    assert built == captured


def test_round_trip_distinct_values() -> None:
    cookie = bytes(range(32))
    raw = rdpudp.build_syn(
        isn=0x12345678, window=17, up_mtu=1200, down_mtu=1150, version=0x0101,
        correlation_id=bytes(range(16, 32)), cookie_hash=cookie, lossy=True,
    )  # fmt: skip
    assert len(raw) == 1150
    syn = rdpudp.parse_syn(raw)
    assert (syn.isn, syn.window, syn.up_mtu, syn.down_mtu) == (0x12345678, 17, 1200, 1150)
    assert syn.lossy and syn.cookie_hash == cookie and syn.version == 0x0101
    answer = rdpudp.parse_syn(rdpudp.build_syn_ack(syn, isn=0x0BADCAFE))
    assert answer.is_syn_ack and answer.ack == 0x12345678 and answer.isn == 0x0BADCAFE
    assert answer.version == 0x0002  # highest common: version 3 needs the cookie check
    plain = rdpudp.parse_syn(rdpudp.build_syn(version=None, pad=False))
    assert plain.flags == SYN and plain.length == 16 and plain.version is None


def test_builder_refuses_out_of_spec_values() -> None:
    for kwargs in ({"up_mtu": 1500}, {"correlation_id": b"x"}, {"cookie_hash": bytes(32)}):
        with pytest.raises(ProtocolError):
            rdpudp.build_syn(**kwargs)


def test_truncations_and_flips_raise_only_protocol_error() -> None:
    _, captured = datagrams("rdpeudp2-handshake-success.pcap")[0]
    head = captured[:90]
    for cut in range(len(head)):
        try:
            rdpudp.parse_syn(head[:cut])
        except ProtocolError:
            pass
    rng = random.Random(3389)
    for _ in range(1000):
        mutated = bytearray(head)
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            rdpudp.parse_syn(bytes(mutated)[: rng.randrange(len(mutated) + 1)])
        except ProtocolError:
            pass
