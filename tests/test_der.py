"""The one X.509 public-key walk (der.subject_public_key_info, der.rsa_public_key) and the one
ASN.1 writer shared by DER and MCS's BER: whole, cut at every byte, trailing bytes, mutated."""

from __future__ import annotations

import random

import pytest
from certgen import self_signed
from cryptography.hazmat.primitives import serialization

from rdprobe.protocol import ber, der
from rdprobe.protocol.errors import ProtocolError


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, int, int]:
    key, cert = self_signed("spki.example.test", bits=1024)
    numbers = key.public_key().public_numbers()
    return cert.public_bytes(serialization.Encoding.DER), numbers.n, numbers.e


def test_whole_certificate_to_its_rsa_key(cert):
    data, n, e = cert
    oid, key = der.subject_public_key_info(data)
    assert oid == "1.2.840.113549.1.1.1"
    assert der.rsa_public_key(key) == (n, e)
    assert der.subject_public_key_info(data + b"\x00trailing") == (oid, key)


def test_every_cut_and_mutation_gives_a_value_or_the_protocol_error(cert):
    data, _n, _e = cert
    for cut in range(len(data)):
        with pytest.raises(ProtocolError):
            der.subject_public_key_info(data[:cut])
    rng = random.Random(3)
    for _ in range(2000):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        try:
            _oid, key = der.subject_public_key_info(bytes(buf))
            der.rsa_public_key(key)
        except ProtocolError:
            pass


def test_ber_writes_with_the_der_writer():
    assert ber.encode_length is der.encode_length and ber.encode_integer is der.integer
    assert ber.encode_tlv(0x04, b"ab") == der.octet_string(b"ab") == b"\x04\x02ab"
    assert ber.encode_tlv(b"\x7f\x65", b"") == b"\x7f\x65\x00"  # [APPLICATION 101] octets
    assert ber.encode_sequence(b"\x05\x00") == der.sequence(b"\x05\x00")
    for value in (0, 1, 127, 128, 255, 256, 64535, -1, -128, -129):
        assert ber.read_integer(der.integer(value), 0, signed=True)[0] == value
    assert der.encode_length(300) == b"\x82\x01\x2c"
    with pytest.raises(ProtocolError):
        der.encode_length(-1)
