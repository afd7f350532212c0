"""Fuzz: every parser gives a value or ProtocolError on mutated real bytes, in linear time.

Seeds are the recorded Windows handshakes (tests/vectors) and the Zeek captures; hypothesis
picks a seed and a short list of edits (derandomized: the same inputs on every CI run, a bounded
budget). Linear time is a ratio: 4x the input must take about 4x the time, never quadratic.
scripts/fuzz.py runs the same targets for longer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzkit import linear
from fuzzkit.targets import Target, run_case, targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdprobe.live.tls import FlightReader
from rdprobe.protocol import credssp, der, gcc, ntlm, tlsrec

TARGETS = {t.name: t for t in targets()}
FUZZ = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def apply_edits(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Edits hypothesis can shrink: (kind, position, bytes) -> overwrite, insert, cut, truncate."""
    out = bytearray(seed)
    for kind, position, data in edits:
        at = position % (len(out) + 1)
        if kind == 0:
            out[at : at + len(data)] = data
        elif kind == 1:
            out[at:at] = data
        elif kind == 2:
            del out[at : at + max(1, len(data))]
        else:
            del out[at:]
    return bytes(out)


def mutated(target: Target) -> st.SearchStrategy[bytes]:
    corpus = target.corpus()
    edit = st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8))
    return st.builds(apply_edits, st.sampled_from(corpus), st.lists(edit, min_size=1, max_size=4))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_corpus_is_not_empty(name):
    assert TARGETS[name].corpus(), f"{name}: no real bytes to mutate"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_real_bytes_parse(name):
    """The unmutated seeds keep the contract too (most parse to a value)."""
    target = TARGETS[name]
    assert [run_case(target, seed) for seed in target.corpus()] == [None] * len(target.corpus())


def _fuzz_test(name: str):
    target = TARGETS[name]

    @FUZZ
    @given(mutated(target))
    def check(data: bytes) -> None:
        assert run_case(target, data) is None, f"{name} broke its contract on {data.hex()}"

    return check


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_mutated_bytes_give_a_value_or_protocol_error(name):
    _fuzz_test(name)()


def _drip(data: bytes) -> object:
    reader = FlightReader()
    for i in range(0, len(data), 6):  # one tiny record per feed
        reader.feed(data[i : i + 6])
    reader.finish()
    return reader.flight()


LINEAR = [
    ("tlsrec.parse_server_flight", tlsrec.parse_server_flight, linear.tiny_record_flight, 4000),
    ("tlsrec.parse_records", tlsrec.parse_records, linear.tiny_record_flight, 4000),
    ("live.tls.FlightReader fed record by record", _drip, linear.tiny_record_flight, 4000),
    ("ntlm.parse_av_pairs", ntlm.parse_av_pairs, linear.av_pairs, 16000),
    ("der.children", der.children, linear.der_children, 16000),
    ("gcc.split_blocks", gcc.split_blocks, linear.gcc_blocks, 16000),
    ("credssp.TSRequest.parse", credssp.TSRequest.parse, linear.tsrequest_tokens, 400),
]


@pytest.mark.parametrize(("name", "fn", "make", "n"), LINEAR, ids=[row[0] for row in LINEAR])
def test_stream_parsers_are_linear(name, fn, make, n):
    assert fn(make(n)) is not None  # the crafted input is valid: the parser does the whole work
    got = min(linear.ratio(fn, make, n) for _ in range(2))
    assert got < linear.RATIO_LIMIT, f"{name}: 4x the input took {got:.1f}x the time"


def test_flight_reader_matches_the_pcap_parser_on_real_flights():
    for flight in TARGETS["tlsrec.parse_server_flight"].corpus():
        reader = FlightReader()
        reader.feed(flight)
        assert reader.complete
        assert reader.flight() == tlsrec.parse_server_flight(flight)


def test_fuzz_reproducer_broken_issuer_name_is_a_trust_result():
    """scripts/fuzz.py found it: a mutated certificate whose issuer name cryptography parses only
    when the verifier's error text is built; verify_chain must give a result, not ValueError."""
    data = (Path(__file__).parent / "fuzz_repro" / "verify-chain-broken-issuer.der").read_bytes()
    assert run_case(TARGETS["trust.verify_chain"], data) is None
