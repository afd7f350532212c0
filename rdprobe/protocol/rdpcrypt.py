"""Standard RDP Security cryptography: client random, session keys, MACs, bulk encryption.

MS-RDPBCGR 5.3.4 (client random encrypted with the server's RSA key, little-endian),
5.3.5.1 (non-FIPS keys: 40, 56, 128-bit RC4), 5.3.5.2 (FIPS: 3DES-CBC keys and HMAC-SHA1),
5.3.6.1 / 5.3.6.1.1 (MAC and salted MAC), 5.3.6.2 (FIPS MAC), 5.3.7 (RC4 key update after
4,096 packets). No I/O: a ``Session`` holds the two directions' state and the caller feeds it.

RC4 and 3DES come from cryptography's ``decrepit`` algorithms: its wheels carry them even where
the system OpenSSL 3 does not, and it is ~1000 times faster than RC4 in Python
(scripts/bench_rc4.py measures both and checks them against the RFC 6229 vectors).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, modes

from rdprobe.protocol import der, rdpsec
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.gcc import EncryptionMethod

PAD1 = b"\x36" * 40
PAD2 = b"\x5c" * 48
KEY_UPDATE_PACKETS = 4096  # 5.3.7: keys change after 4,096 encryptions (or decryptions)
FIPS_IV = bytes.fromhex("1234567890abcdef")  # 5.3.5.2
SALT_40BIT = b"\xd1\x26\x9e"
SALT_56BIT = b"\xd1"
RANDOM_LEN = 32


class Direction(enum.Enum):
    CLIENT_TO_SERVER = "cs"
    SERVER_TO_CLIENT = "sc"


def encrypt_client_random(client_random: bytes, modulus: int, exponent: int) -> bytes:
    """5.3.4.1: the 32-byte random as a little-endian integer, raised to e mod n, written
    little-endian over the modulus length (the 8 zero bytes of padding are added by the PDU)."""
    if len(client_random) != RANDOM_LEN:
        raise ProtocolError(f"client random of {len(client_random)} bytes, expected 32")
    size = (modulus.bit_length() + 7) // 8
    value = int.from_bytes(client_random, "little")
    if modulus <= 0 or value >= modulus:
        raise ProtocolError("server modulus too small for the client random")
    return pow(value, exponent, modulus).to_bytes(size, "little")


def decrypt_client_random(encrypted: bytes, modulus: int, private_exponent: int) -> bytes:
    """The server side of 5.3.4.1 (emulator and tests): the random back from its encryption."""
    value = pow(int.from_bytes(encrypted, "little"), private_exponent, modulus)
    return value.to_bytes(max(RANDOM_LEN, (modulus.bit_length() + 7) // 8), "little")[:RANDOM_LEN]


# --- key derivation -------------------------------------------------------------------------


def _salted_hash(secret: bytes, i: bytes, client_random: bytes, server_random: bytes) -> bytes:
    inner = hashlib.sha1(i + secret + client_random + server_random).digest()
    return hashlib.md5(secret + inner).digest()


def _weaken(key128: bytes, method: int) -> bytes:
    """5.3.5.1: 40-bit and 56-bit keys are the first 64 bits with a fixed salt in front."""
    if method == EncryptionMethod.ENCRYPTION_METHOD_40BIT:
        return SALT_40BIT + key128[3:8]
    if method == EncryptionMethod.ENCRYPTION_METHOD_56BIT:
        return SALT_56BIT + key128[1:8]
    return key128


@dataclass(frozen=True)
class SessionKeys:
    """The client's view: what it encrypts with, decrypts with, and signs with."""

    method: int
    encrypt_key: bytes
    decrypt_key: bytes
    mac_key: bytes


def derive_keys(client_random: bytes, server_random: bytes, method: int) -> SessionKeys:
    """Session keys of the client for ``method`` (5.3.5.1 non-FIPS, 5.3.5.2 FIPS)."""
    if len(client_random) != RANDOM_LEN or len(server_random) != RANDOM_LEN:
        raise ProtocolError("client and server randoms must be 32 bytes each")
    if method == EncryptionMethod.ENCRYPTION_METHOD_FIPS:
        return _derive_fips(client_random, server_random)
    if method not in (
        EncryptionMethod.ENCRYPTION_METHOD_40BIT,
        EncryptionMethod.ENCRYPTION_METHOD_56BIT,
        EncryptionMethod.ENCRYPTION_METHOD_128BIT,
    ):
        raise ProtocolError(f"no session keys for encryption method 0x{method:x}")
    pre_master = client_random[:24] + server_random[:24]
    master = b"".join(
        _salted_hash(pre_master, i, client_random, server_random) for i in (b"A", b"BB", b"CCC")
    )
    blob = b"".join(
        _salted_hash(master, i, client_random, server_random) for i in (b"X", b"YY", b"ZZZ")
    )

    def final(part: bytes) -> bytes:
        return hashlib.md5(part + client_random + server_random).digest()

    mac128, server_encrypt, server_decrypt = blob[:16], final(blob[16:32]), final(blob[32:48])
    return SessionKeys(
        method,
        encrypt_key=_weaken(server_decrypt, method),  # the client encrypts what the server decrypts
        decrypt_key=_weaken(server_encrypt, method),
        mac_key=_weaken(mac128, method),
    )


def _reverse_bits(byte: int) -> int:
    return int(f"{byte:08b}"[::-1], 2)


def _odd_parity(byte: int) -> int:
    high = byte & 0xFE
    return high | (0 if bin(high).count("1") % 2 else 1)


def _des3_key(key160: bytes) -> bytes:
    """5.3.5.2: 160 bits + their first 8 bits = 168 bits, taken 7 at a time into 24 bytes.
    The bits are counted from the least significant end of each byte (the order the
    Windows-compatible peers use; checked against xrdp at crypt_level fips), and each byte's
    low bit becomes DES odd parity."""
    stream = int.from_bytes(bytes(_reverse_bits(b) for b in key160 + key160[:1]), "big")
    out = bytearray()
    for i in range(24):
        seven = (stream >> (168 - 7 * (i + 1))) & 0x7F
        out.append(_odd_parity(_reverse_bits(seven << 1)))
    return bytes(out)


def _derive_fips(client_random: bytes, server_random: bytes) -> SessionKeys:
    client_encrypt = hashlib.sha1(client_random[16:] + server_random[16:]).digest()
    client_decrypt = hashlib.sha1(client_random[:16] + server_random[:16]).digest()
    mac = hashlib.sha1(client_decrypt + client_encrypt).digest()
    return SessionKeys(
        EncryptionMethod.ENCRYPTION_METHOD_FIPS,
        encrypt_key=_des3_key(client_encrypt),
        decrypt_key=_des3_key(client_decrypt),
        mac_key=mac,
    )


# --- MACs (5.3.6.1, 5.3.6.1.1, 5.3.6.2) -----------------------------------------------------


def mac_signature(mac_key: bytes, data: bytes, *, salt_count: int | None = None) -> bytes:
    """First 64 bits of MD5(key + pad2 + SHA(key + pad1 + len + data [+ count])); the salted
    form (SEC_SECURE_CHECKSUM) appends the sender's encryption count."""
    tail = struct.pack("<I", salt_count) if salt_count is not None else b""
    inner = hashlib.sha1(mac_key + PAD1 + struct.pack("<I", len(data)) + data + tail).digest()
    return hashlib.md5(mac_key + PAD2 + inner).digest()[:8]


def fips_mac(mac_key: bytes, data: bytes, count: int) -> bytes:
    return hmac.new(mac_key, data + struct.pack("<I", count), hashlib.sha1).digest()[:8]


# --- key update (5.3.7.1) -------------------------------------------------------------------


def update_key(initial: bytes, current: bytes, method: int) -> bytes:
    """The next RC4 key after 4,096 packets."""
    sha = hashlib.sha1(initial + PAD1 + current).digest()
    temp = hashlib.md5(initial + PAD2 + sha).digest()[: len(initial)]
    new = Cipher(ARC4(temp), mode=None).encryptor().update(temp)
    return _weaken(new + b"\x00" * (16 - len(new)), method)[: len(initial)]


# --- one direction of bulk encryption -------------------------------------------------------


@dataclass
class _Stream:
    """Encryption or decryption state of one direction (its key, cipher and packet count)."""

    method: int
    initial_key: bytes
    key: bytes = b""
    count: int = 0  # packets processed with the current key
    total: int = 0  # packets processed since the start (the salted MAC's counter)
    _ctx: CipherContext | None = field(default=None, repr=False)
    encrypting: bool = True

    def __post_init__(self) -> None:
        self.key = self.initial_key
        self._ctx = self._new_ctx()

    def _new_ctx(self) -> CipherContext:
        cipher: Cipher[Any]
        if self.method == EncryptionMethod.ENCRYPTION_METHOD_FIPS:
            cipher = Cipher(TripleDES(self.key), modes.CBC(FIPS_IV))
        else:
            cipher = Cipher(ARC4(self.key), mode=None)
        return cipher.encryptor() if self.encrypting else cipher.decryptor()

    def process(self, data: bytes) -> bytes:
        if self.method != EncryptionMethod.ENCRYPTION_METHOD_FIPS and (
            self.count >= KEY_UPDATE_PACKETS
        ):
            self.key = update_key(self.initial_key, self.key, self.method)
            self._ctx = self._new_ctx()
            self.count = 0
        assert self._ctx is not None
        out = self._ctx.update(data)
        self.count += 1
        self.total += 1
        return out


class Session:
    """Both directions of Standard RDP Security for the client (sans-IO, stateful).

    ``protect`` returns (signature, ciphertext, fips padding) for a PDU body to send;
    ``unprotect`` checks a received body's signature and returns the plaintext, raising
    ProtocolError on a MAC that does not verify.
    """

    def __init__(self, keys: SessionKeys, *, salted: bool = False) -> None:
        self.keys = keys
        self.salted = salted
        self.fips = keys.method == EncryptionMethod.ENCRYPTION_METHOD_FIPS
        self._out = _Stream(keys.method, keys.encrypt_key, encrypting=True)
        self._in = _Stream(keys.method, keys.decrypt_key, encrypting=False)

    @property
    def sent(self) -> int:
        return self._out.total

    @property
    def received(self) -> int:
        return self._in.total

    def _sign(self, data: bytes, count: int, salted: bool) -> bytes:
        if self.fips:
            return fips_mac(self.keys.mac_key, data, count)
        return mac_signature(self.keys.mac_key, data, salt_count=count if salted else None)

    def protect(self, data: bytes) -> tuple[bytes, bytes, int]:
        count = self._out.total
        signature = self._sign(data, count, self.salted)
        padding = 0
        if self.fips:
            padding = (8 - len(data) % 8) % 8
            data = data + b"\x00" * padding
        return signature, self._out.process(data), padding

    def unprotect(
        self, signature: bytes, data: bytes, *, padding: int = 0, salted: bool = False
    ) -> bytes:
        """``salted``: the header carried SEC_SECURE_CHECKSUM."""
        count = self._in.total
        if self.fips and len(data) % 8:
            raise ProtocolError(f"FIPS ciphertext of {len(data)} bytes is not whole blocks")
        plain = self._in.process(data)
        if padding:
            if padding > len(plain):
                raise ProtocolError(f"FIPS padlen {padding} longer than the data")
            plain = plain[: len(plain) - padding]
        if self._sign(plain, count, salted) != signature:
            raise ProtocolError("MAC of a server PDU does not verify (wrong session keys)")
        return plain


# --- the server's public key (5.3.3.1 proprietary, 5.3.3.2 X.509 leaf) ----------------------
# The X.509 leaf is read with the one SubjectPublicKeyInfo walk (rdprobe.protocol.der): Windows
# licensing certificates use key OIDs cryptography refuses, though the key is plain PKCS#1.


def server_public_key(cert: rdpsec.ServerCertificate) -> tuple[int, int]:
    """(modulus, exponent) to encrypt the client random with; ProtocolError if unusable."""
    if isinstance(cert, rdpsec.ProprietaryCertificate):
        modulus, exponent = cert.modulus, cert.public_exponent
    else:
        if not cert.certs:
            raise ProtocolError("empty X.509 chain")
        _oid, key = der.subject_public_key_info(cert.certs[-1])
        modulus, exponent = der.rsa_public_key(key)
    if modulus.bit_length() < 256 or exponent < 3:
        raise ProtocolError(f"unusable server RSA key ({modulus.bit_length()} bits, e={exponent})")
    return modulus, exponent
