"""The credential half of CredSSP (MS-CSSP 2.2.1.2, 3.1.5), NTSTATUS names, credentials input."""

from __future__ import annotations

import hashlib
import random

import pytest
from certgen import self_signed
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from rdprobe.live.credentials import (
    PASSWORD_ENV,
    CredentialError,
    Credentials,
    parse_user,
    read_password,
)
from rdprobe.protocol import der
from rdprobe.protocol.credssp import TSRequest
from rdprobe.protocol.credssp_auth import (
    CRED_TYPE_SMARTCARD,
    PasswordCreds,
    build_ts_credentials,
    client_pub_key_auth,
    expected_server_pub_key_auth,
    parse_ts_credentials,
    subject_public_key,
)
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.ntstatus import NtStatus, describe, status_name

CREDS = PasswordCreds("CORP", "alice", "S3cr\u00e9t-pass")
NONCE = bytes(range(1, 33))


def test_ts_credentials_round_trip_with_distinct_values():
    raw = build_ts_credentials(CREDS)
    assert parse_ts_credentials(raw) == (1, CREDS)
    assert parse_ts_credentials(raw + b"trailing") == (1, CREDS)
    # the layout of MS-CSSP 2.2.1.2: credType 1, then TSPasswordCreds in UTF-16LE
    body, _ = der.expect(raw, der.TAG_SEQUENCE)
    fields = der.children(body)
    assert [t for t, _ in fields] == [0xA0, 0xA1]
    inner = der.expect(der.expect(fields[1][1], der.TAG_OCTET_STRING)[0], der.TAG_SEQUENCE)[0]
    values = [der.expect(v, der.TAG_OCTET_STRING)[0] for _, v in der.children(inner)]
    assert values == [s.encode("utf-16-le") for s in ("CORP", "alice", "S3cr\u00e9t-pass")]


def test_ts_credentials_repr_hides_the_password():
    assert "S3cr" not in repr(CREDS) and "alice" in repr(CREDS)


def test_ts_credentials_other_types_and_empty_domain():
    smartcard = der.sequence(
        der.explicit(0, der.integer(CRED_TYPE_SMARTCARD)), der.explicit(1, der.octet_string(b"x"))
    )
    assert parse_ts_credentials(smartcard) == (CRED_TYPE_SMARTCARD, None)
    empty = PasswordCreds("", "bob", "p")
    assert parse_ts_credentials(build_ts_credentials(empty)) == (1, empty)


def test_ts_credentials_cut_anywhere_is_a_protocol_error():
    raw = build_ts_credentials(CREDS)
    for cut in range(len(raw)):
        with pytest.raises(ProtocolError):
            parse_ts_credentials(raw[:cut])


@pytest.mark.parametrize(
    "raw",
    [
        der.sequence(der.explicit(0, der.integer(1))),  # no credentials
        der.sequence(
            der.explicit(0, der.integer(1)), der.explicit(1, der.octet_string(b"\x30\x00"))
        ),
        der.sequence(der.integer(1)),  # untagged
        der.sequence(
            der.explicit(0, der.integer(1)),
            der.explicit(
                1,
                der.octet_string(
                    der.sequence(*(der.explicit(i, der.octet_string(b"abc")) for i in range(3)))
                ),
            ),
        ),  # odd-length UTF-16
    ],
)
def test_malformed_ts_credentials(raw):
    with pytest.raises(ProtocolError):
        parse_ts_credentials(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 10_000))
def test_mutated_ts_credentials_parse_or_raise_protocol_error(noise, seed):
    raw = bytearray(build_ts_credentials(CREDS))
    rng = random.Random(seed)
    for byte in noise[:6]:
        raw[rng.randrange(len(raw))] = byte
    for data in (bytes(raw), noise):
        try:
            parse_ts_credentials(data)
        except ProtocolError:
            pass


def test_pub_key_auth_v2_to_v4_is_the_key_and_the_answer_adds_one():
    key = b"\x30\x82\x01\x0a" + b"\x11" * 20
    for version in (2, 3, 4):
        assert client_pub_key_auth(key, version, None) == key
        assert expected_server_pub_key_auth(key, version, None) == b"\x31" + key[1:]
    assert expected_server_pub_key_auth(b"\xff\x01", 2, None) == b"\x00\x01"


def test_pub_key_auth_v5_v6_hashes_the_nonce_and_key():
    key = b"public key bytes"
    for version in (5, 6):
        assert (
            client_pub_key_auth(key, version, NONCE)
            == hashlib.sha256(b"CredSSP Client-To-Server Binding Hash\x00" + NONCE + key).digest()
        )
        assert (
            expected_server_pub_key_auth(key, version, NONCE)
            == hashlib.sha256(b"CredSSP Server-To-Client Binding Hash\x00" + NONCE + key).digest()
        )
        with pytest.raises(ValueError):
            client_pub_key_auth(key, version, None)
        with pytest.raises(ValueError):
            expected_server_pub_key_auth(key, version, NONCE[:31])


def test_subject_public_key_of_rsa_and_ec_certificates():
    key, cert = self_signed("rsa.test")
    der_cert = cert.public_bytes(serialization.Encoding.DER)
    assert subject_public_key(der_cert) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ec_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec.test")])
    ec_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec_key.public_key())
        .serial_number(7)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .sign(ec_key, hashes.SHA256())
    ).public_bytes(serialization.Encoding.DER)
    assert subject_public_key(ec_cert) == ec_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    for cut in range(0, len(der_cert), 37):
        with pytest.raises(ProtocolError):
            subject_public_key(der_cert[:cut])
    with pytest.raises(ProtocolError):
        subject_public_key(b"\x30\x03\x02\x01\x01")


def test_tsrequest_with_the_logon_fields_round_trips_and_cuts_cleanly():
    request = TSRequest(6, (b"NTLMSSP\x00\x03rest",), pub_key_auth=b"\x05" * 48, client_nonce=NONCE)
    raw = request.build()
    assert TSRequest.parse(raw) == request and TSRequest.parse(raw + b"\x00\x01") == request
    for cut in range(len(raw)):
        with pytest.raises(ProtocolError):
            TSRequest.parse(raw[:cut])
    creds = TSRequest(6, auth_info=b"\x09" * 70)
    assert TSRequest.parse(creds.build()) == creds


def test_ntstatus_names():
    assert status_name(0xC000006D) == "STATUS_LOGON_FAILURE"
    assert status_name(-0x3FFFFDCC) == "STATUS_ACCOUNT_LOCKED_OUT"  # signed 0xC0000234
    assert NtStatus.STATUS_PASSWORD_MUST_CHANGE == 0xC0000224
    assert NtStatus.STATUS_LOGON_TYPE_NOT_GRANTED == 0xC000015B
    assert status_name(0x8009030C) == "SEC_E_LOGON_DENIED"
    assert status_name(0x12345678) is None
    assert describe(0xC0000072) == "STATUS_ACCOUNT_DISABLED (0xc0000072)"
    assert describe(0x12345678) == "0x12345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("alice", ("", "alice")), ("CORP\\alice", ("CORP", "alice")),
     ("alice@corp.example", ("", "alice@corp.example")), (".\\admin", (".", "admin"))],
)  # fmt: skip
def test_parse_user(text, expected):
    assert parse_user(text) == expected


@pytest.mark.parametrize("text", ["", "CORP\\", "A\\B\\c", "bad\x01name", "x/y", "a" * 300])
def test_parse_user_refuses(text):
    with pytest.raises(CredentialError):
        parse_user(text)


def test_password_sources():
    assert read_password(environ={PASSWORD_ENV: "pw1"}) == "pw1"
    asked = []
    got = read_password(environ={}, prompt=lambda p: asked.append(p) or "pw2", interactive=True)
    assert got == "pw2" and asked == ["Password: "]
    with pytest.raises(CredentialError, match=PASSWORD_ENV):
        read_password(environ={}, interactive=False)
    with pytest.raises(CredentialError):
        read_password(environ={PASSWORD_ENV: ""})


def test_credentials_hide_and_clear_the_password():
    creds = Credentials("alice", "CORP", "hunter2-secret")
    for text in (repr(creds), str(creds), f"{creds}"):
        assert "hunter2" not in text and "CORP\\alice" in text
    assert creds.password() == "hunter2-secret"
    creds.clear()
    with pytest.raises(CredentialError) as info:
        creds.password()
    assert "hunter2" not in str(info.value)
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(creds)
