"""Every parser of rdprobe.protocol (and the live adapters' sans-IO parts) with its seeds.

The contract checked: a value, or ProtocolError (``never_raises`` targets: a value, always).
Anything else is a defect, counted by kind "<target>: <exception type>".
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from fuzzkit import seeds
from fuzzkit.mutate import mutate
from rdprobe.protocol.errors import ProtocolError


@dataclass(frozen=True)
class Target:
    name: str
    parse: Callable[[bytes], object]
    corpus: Callable[[], tuple[bytes, ...]]
    never_raises: bool = False


def _payloads(kind: str) -> tuple[bytes, ...]:
    from rdprobe.protocol import x224

    out = []
    for pdu in seeds.pdus(kind):
        try:
            out.append(x224.parse_data(pdu))
        except ProtocolError:
            continue
    return tuple(out)


@functools.cache
def _connect_initial_user_data() -> tuple[bytes, ...]:
    from rdprobe.protocol import mcs

    out = []
    for payload in _payloads("mcs_ci"):
        try:
            out.append(mcs.parse_connect_initial(payload).user_data)
        except (ProtocolError, AttributeError):
            continue
    return tuple(out)


@functools.cache
def _connect_response_user_data() -> tuple[bytes, ...]:
    from rdprobe.protocol import mcs

    out = []
    for payload in _payloads("mcs_cr"):
        try:
            reply = mcs.parse_server_pdu(payload)
        except ProtocolError:
            continue
        if isinstance(reply, mcs.ConnectResponse):
            out.append(reply.user_data)
    return tuple(out)


@functools.cache
def _proprietary_certificates() -> tuple[bytes, ...]:
    from rdprobe.protocol import gcc_server

    out = []
    for data in _connect_response_user_data():
        try:
            sec = gcc_server.parse_conference_create_response(data).security
        except ProtocolError:
            continue
        if sec is not None and sec.certificate_bytes:
            out.append(sec.certificate_bytes)
    return tuple(out)


@functools.cache
def _ntlm_tokens(kind: str) -> tuple[bytes, ...]:
    from rdprobe.protocol import ntlm
    from rdprobe.protocol.credssp import TSRequest

    out = []
    for pdu in seeds.pdus(kind):
        try:
            for token in TSRequest.parse(pdu).nego_tokens:
                start = token.find(ntlm.SIGNATURE)
                if start >= 0:
                    out.append(token[start:])
        except ProtocolError:
            continue
    return tuple(out)


@functools.cache
def _av_pairs() -> tuple[bytes, ...]:
    from rdprobe.protocol import ntlm

    out = []
    for token in _ntlm_tokens("credssp_tsrequest_ntlm_challenge"):
        length, _max, offset = (int.from_bytes(token[i : i + n], "little") for i, n in
                                ((40, 2), (42, 2), (44, 4)))  # fmt: skip
        out.append(token[offset : offset + length])
    del ntlm
    return tuple(out)


def _flight_reader(data: bytes) -> object:
    """The live fallback's incremental reader: whole, and one byte at a time, must agree."""
    from rdprobe.live.tls import FlightReader

    whole = FlightReader()
    whole.feed(data)
    whole.finish()
    dripped = FlightReader()
    error: ProtocolError | None = None
    try:
        for i in range(len(data)):
            dripped.feed(data[i : i + 1])
        dripped.finish()
    except ProtocolError as exc:
        error = exc
    if error is None and dripped.flight() != whole.flight():
        raise AssertionError("FlightReader: one byte at a time differs from whole")
    return whole.flight()


def _describe_certificate(data: bytes) -> object:
    from rdprobe.analysis.certificate import describe_certificate

    return describe_certificate(data).to_dict()


def _describe_chain(data: bytes) -> object:
    from rdprobe.analysis.certificate import describe_chain

    return [c.to_dict() for c in describe_chain((data,))]


@functools.cache
def _roots():
    from rdprobe.trust_store import load_trust_roots

    return load_trust_roots(None)


def _verify_chain(data: bytes) -> object:
    from datetime import UTC, datetime

    from rdprobe.analysis.trust import verify_chain

    return verify_chain([data], roots=_roots(), hostname="rdp.example.test", now=datetime.now(UTC))


def _interpret_reply(data: bytes) -> object:
    from rdprobe.live.nla import interpret_reply

    return interpret_reply(data)


def _gcc_blocks(data: bytes) -> object:
    from rdprobe.protocol import gcc

    return gcc.split_blocks(data)


def targets() -> tuple[Target, ...]:
    from rdprobe.protocol import (
        credssp,
        der,
        gcc_client,
        gcc_server,
        mcs,
        ntlm,
        rdpsec,
        rdpudp,
        tlsrec,
        tpkt,
        x224,
    )

    tpkts = lambda: seeds.pdus("x224_cr", "x224_cc", "x224_cc_neg_failure", "mcs_ci", "mcs_cr")  # noqa: E731
    confirms = lambda: seeds.pdus("x224_cc", "x224_cc_neg_failure")  # noqa: E731
    flights = lambda: seeds.pdus("tls_server_hello_certificate_done_record")  # noqa: E731
    tsrequests = lambda: seeds.pdus(  # noqa: E731
        "credssp_tsrequest_ntlm_negotiate",
        "credssp_tsrequest_ntlm_challenge",
        "credssp_tsrequest_pubkeyauth",
    )
    return (
        Target("tpkt.frame_length", tpkt.frame_length, tpkts),
        Target("x224.parse_request", x224.parse_request, lambda: seeds.pdus("x224_cr")),
        Target("x224.parse_server_tpdu", x224.parse_server_tpdu, confirms),
        Target("x224.parse_confirm", x224.parse_confirm, confirms),
        Target("x224.parse_data", x224.parse_data, lambda: seeds.pdus("mcs_ci", "mcs_cr")),
        Target("mcs.parse_connect_initial", mcs.parse_connect_initial,
               lambda: _payloads("mcs_ci")),
        Target("mcs.parse_server_pdu", mcs.parse_server_pdu, lambda: _payloads("mcs_cr")),
        Target("gcc.split_blocks", _gcc_blocks, _connect_response_user_data),
        Target("gcc_client.parse_conference_create_request",
               gcc_client.parse_conference_create_request, _connect_initial_user_data),
        Target("gcc_server.parse_conference_create_response",
               gcc_server.parse_conference_create_response, _connect_response_user_data),
        Target("rdpsec.parse_server_certificate", rdpsec.parse_server_certificate,
               _proprietary_certificates),
        Target("credssp.TSRequest.parse", credssp.TSRequest.parse, tsrequests),
        Target("credssp.tsrequest_length", credssp.tsrequest_length, tsrequests),
        Target("ntlm.parse_challenge", ntlm.parse_challenge,
               lambda: _ntlm_tokens("credssp_tsrequest_ntlm_challenge")),
        Target("ntlm.parse_negotiate", ntlm.parse_negotiate,
               lambda: _ntlm_tokens("credssp_tsrequest_ntlm_negotiate")),
        Target("ntlm.parse_av_pairs", ntlm.parse_av_pairs, _av_pairs),
        Target("tlsrec.parse_server_flight", tlsrec.parse_server_flight, flights),
        Target("tlsrec.parse_records", tlsrec.parse_records, flights),
        Target("tlsrec.parse_client_hello_records", tlsrec.parse_records,
               lambda: seeds.pdus("tls_client_hello_record")),
        Target("live.tls.FlightReader", _flight_reader, flights),
        Target("der.children", der.children, seeds.tls_certificates),
        Target("rdpudp.parse_syn", rdpudp.parse_syn,
               lambda: (*seeds.udp_payloads(), rdpudp.build_syn())),
        Target("certificate.describe_certificate", _describe_certificate,
               seeds.tls_certificates),
        Target("certificate.describe_chain", _describe_chain, seeds.tls_certificates, True),
        Target("trust.verify_chain", _verify_chain, seeds.tls_certificates, True),
        Target("nla.interpret_reply", _interpret_reply, tsrequests, True),
    )  # fmt: skip


def run_case(target: Target, data: bytes) -> str | None:
    """None when the contract holds, else the defect's kind."""
    try:
        target.parse(data)
    except ProtocolError:
        if target.never_raises:
            return f"{target.name}: ProtocolError"
    except RecursionError:
        return f"{target.name}: RecursionError"
    except Exception as exc:
        return f"{target.name}: {type(exc).__name__}"
    return None


def cases(target: Target, rng: random.Random, count: int):
    """*count* mutated inputs from the target's corpus (plus each seed whole)."""
    corpus = target.corpus()
    if not corpus:
        return
    yield from corpus
    for _ in range(count):
        yield mutate(rng, rng.choice(corpus))
