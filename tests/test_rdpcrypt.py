"""Standard RDP Security crypto (MS-RDPBCGR 5.3.4-5.3.7): client random, keys, MACs, RC4 and
3DES both ways, the key update every 4,096 packets. The real peer that checks all of this is
xrdp (tests/test_session_servers.py: it decrypts our Client Info and we verify its MACs); here
the published values: RFC 6229 for RC4, the Terminal Services key pair of 5.3.3.1.1 for RSA."""

from __future__ import annotations

import hashlib
import os

import pytest
from certgen import self_signed
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher

from rdprobe.protocol import rdpcrypt, rdpsec
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.gcc import EncryptionMethod as M

CLIENT_RANDOM = bytes(range(1, 33))
SERVER_RANDOM = bytes(range(0x80, 0xA0))


def test_rc4_matches_rfc_6229():
    for key, offset0 in [
        ("0102030405", "b2396305f03dc027ccc3524a0a1118a8"),
        ("01020304050607", "293f02d47f37c9b633f2af5285feb46b"),
        ("0102030405060708", "97ab8a1bf0afb96132f2f67258da15a8"),
        ("0102030405060708090a0b0c0d0e0f10", "9ac7cc9a609d1ef7b2932899cde41b97"),
    ]:
        stream = Cipher(ARC4(bytes.fromhex(key)), mode=None).encryptor().update(b"\x00" * 16)
        assert stream.hex() == offset0


def test_client_random_round_trips_through_the_terminal_services_key_pair():
    """5.3.4.1: little-endian RSA; the TS key's private exponent is public (5.3.3.1.1)."""
    encrypted = rdpcrypt.encrypt_client_random(CLIENT_RANDOM, rdpsec.TS_MODULUS,
                                               rdpsec.TS_EXPONENT)  # fmt: skip
    assert len(encrypted) == 64 and encrypted != CLIENT_RANDOM
    value = int.from_bytes(encrypted, "little")
    assert pow(value, rdpsec.TS_PRIVATE_EXPONENT, rdpsec.TS_MODULUS) == int.from_bytes(
        CLIENT_RANDOM, "little"
    )
    assert (
        rdpcrypt.decrypt_client_random(encrypted, rdpsec.TS_MODULUS, rdpsec.TS_PRIVATE_EXPONENT)
        == CLIENT_RANDOM
    )
    with pytest.raises(ProtocolError):
        rdpcrypt.encrypt_client_random(b"short", rdpsec.TS_MODULUS, rdpsec.TS_EXPONENT)


def test_public_key_from_proprietary_and_x509_certificates():
    cert = rdpsec.parse_server_certificate(rdpsec.build_proprietary_certificate(rdpsec.TS_MODULUS))
    assert rdpcrypt.server_public_key(cert) == (rdpsec.TS_MODULUS, 65537)
    key, certificate = self_signed("rdprobe-test", bits=1024)
    der = certificate.public_bytes(serialization.Encoding.DER)
    chain = rdpsec.parse_server_certificate(rdpsec.build_x509_chain([der]))
    numbers = key.public_key().public_numbers()
    assert rdpcrypt.server_public_key(chain) == (numbers.n, numbers.e)


def _manual_non_fips(client: bytes, server: bytes) -> tuple[bytes, bytes, bytes]:
    """5.3.5.1 spelt out once more, independently of the module's helpers."""

    def salted(secret: bytes, label: bytes) -> bytes:
        return hashlib.md5(
            secret + hashlib.sha1(label + secret + client + server).digest()
        ).digest()

    pre = client[:24] + server[:24]
    master = salted(pre, b"A") + salted(pre, b"BB") + salted(pre, b"CCC")
    blob = salted(master, b"X") + salted(master, b"YY") + salted(master, b"ZZZ")
    final = [hashlib.md5(part + client + server).digest() for part in (blob[16:32], blob[32:48])]
    return blob[:16], final[0], final[1]  # MAC key, server encrypt, server decrypt


@pytest.mark.parametrize("method", [M.ENCRYPTION_METHOD_40BIT, M.ENCRYPTION_METHOD_56BIT,
                                    M.ENCRYPTION_METHOD_128BIT])  # fmt: skip
def test_non_fips_keys(method):
    keys = rdpcrypt.derive_keys(CLIENT_RANDOM, SERVER_RANDOM, method)
    mac, server_encrypt, server_decrypt = _manual_non_fips(CLIENT_RANDOM, SERVER_RANDOM)
    if method == M.ENCRYPTION_METHOD_128BIT:
        assert (keys.mac_key, keys.encrypt_key, keys.decrypt_key) == (
            mac, server_decrypt, server_encrypt,
        )  # fmt: skip
    else:
        salt = b"\xd1\x26\x9e" if method == M.ENCRYPTION_METHOD_40BIT else b"\xd1"
        for got, full in [(keys.mac_key, mac), (keys.encrypt_key, server_decrypt),
                          (keys.decrypt_key, server_encrypt)]:  # fmt: skip
            assert (
                len(got) == 8 and got.startswith(salt) and got[len(salt) :] == full[len(salt) : 8]
            )


def test_fips_keys_are_3des_with_odd_parity():
    keys = rdpcrypt.derive_keys(CLIENT_RANDOM, SERVER_RANDOM, M.ENCRYPTION_METHOD_FIPS)
    assert len(keys.encrypt_key) == len(keys.decrypt_key) == 24 and len(keys.mac_key) == 20
    for byte in keys.encrypt_key + keys.decrypt_key:
        assert bin(byte).count("1") % 2 == 1
    encrypt_t = hashlib.sha1(CLIENT_RANDOM[16:] + SERVER_RANDOM[16:]).digest()
    decrypt_t = hashlib.sha1(CLIENT_RANDOM[:16] + SERVER_RANDOM[:16]).digest()
    assert keys.mac_key == hashlib.sha1(decrypt_t + encrypt_t).digest()


def _server_of(keys: rdpcrypt.SessionKeys) -> rdpcrypt.Session:
    """The server's side: what the client encrypts with, it decrypts with, and back."""
    return rdpcrypt.Session(rdpcrypt.SessionKeys(keys.method, keys.decrypt_key,
                                                 keys.encrypt_key, keys.mac_key))  # fmt: skip


@pytest.mark.parametrize("method", [M.ENCRYPTION_METHOD_40BIT, M.ENCRYPTION_METHOD_56BIT,
                                    M.ENCRYPTION_METHOD_128BIT, M.ENCRYPTION_METHOD_FIPS])  # fmt: skip
def test_both_directions_through_the_key_update(method):
    """5,000 PDUs each way: past the RC4 key update at 4,096; the MAC of every one verifies,
    and a flipped bit or a replay does not."""
    keys = rdpcrypt.derive_keys(CLIENT_RANDOM, SERVER_RANDOM, method)
    client, server = rdpcrypt.Session(keys), _server_of(keys)
    first_key = client._out.key
    for n in range(5000):
        data = os.urandom(1 + n % 37)
        signature, cipher, padding = client.protect(data)
        assert cipher != data or len(data) < 2
        assert server.unprotect(signature, cipher, padding=padding) == data
        sig2, cipher2, pad2 = server.protect(data[::-1])
        assert client.unprotect(sig2, cipher2, padding=pad2) == data[::-1]
        if n == 4095 and method != M.ENCRYPTION_METHOD_FIPS:
            assert client._out.key == first_key  # 4,096 packets with the first key
    if method != M.ENCRYPTION_METHOD_FIPS:
        assert client._out.key != first_key and client._out.count == 5000 - 4096
        assert client._out.key == server._in.key
    signature, cipher, padding = client.protect(b"hello world, 16b")
    tampered = bytes([cipher[0] ^ 1]) + cipher[1:]
    with pytest.raises(ProtocolError, match="MAC"):
        server.unprotect(signature, tampered, padding=padding)


def test_key_update_follows_5_3_7_1():
    initial, current = bytes(range(16)), bytes(range(16, 32))
    sha = hashlib.sha1(initial + b"\x36" * 40 + current).digest()
    temp = hashlib.md5(initial + b"\x5c" * 48 + sha).digest()
    expected = Cipher(ARC4(temp), mode=None).encryptor().update(temp)
    assert rdpcrypt.update_key(initial, current, M.ENCRYPTION_METHOD_128BIT) == expected
    short = rdpcrypt.update_key(initial[:8], current[:8], M.ENCRYPTION_METHOD_40BIT)
    assert len(short) == 8 and short[:3] == b"\xd1\x26\x9e"


def test_mac_and_salted_mac_follow_5_3_6():
    key, data = b"k" * 16, b"some pdu body"
    inner = hashlib.sha1(key + b"\x36" * 40 + len(data).to_bytes(4, "little") + data).digest()
    assert rdpcrypt.mac_signature(key, data) == hashlib.md5(key + b"\x5c" * 48 + inner).digest()[:8]
    salted = rdpcrypt.mac_signature(key, data, salt_count=5)
    assert salted != rdpcrypt.mac_signature(key, data)
    assert salted != rdpcrypt.mac_signature(key, data, salt_count=6)


def test_derive_rejects_bad_input():
    with pytest.raises(ProtocolError):
        rdpcrypt.derive_keys(b"x" * 31, SERVER_RANDOM, M.ENCRYPTION_METHOD_128BIT)
    with pytest.raises(ProtocolError):
        rdpcrypt.derive_keys(CLIENT_RANDOM, SERVER_RANDOM, 0x04)
