"""Standard RDP Security server certificates: proprietary (RSA1) and X.509 chain.

MS-RDPBCGR 2.2.1.4.3.1 (SERVER_CERTIFICATE), 2.2.1.4.3.1.1 (PROPRIETARYSERVERCERTIFICATE),
2.2.1.4.3.1.1.1 (RSA_PUBLIC_KEY), 5.3.3.1 (signing with the Terminal Services key),
5.3.3.2 (X.509 chain). All integers little-endian.

dwVersion's top bit ``t``: 0 = permanently issued, 1 = temporarily issued (spec text; Zeek's
cert_permanent agrees: T for 0x00000001, F for 0x80000002 in its traces).

Errors: a structurally malformed certificate raises ProtocolError (gcc_server.parse_server_security
catches it and keeps the bytes plus the error, so the MCS response still parses and the finding
can be raised). A well-formed proprietary certificate whose signature does not verify parses with
``verified=False``.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import struct
import warnings
from dataclasses import dataclass

from rdprobe.protocol import der
from rdprobe.protocol.errors import ProtocolError

TEMPORARY_BIT = 0x80000000
RSA1_MAGIC = 0x31415352  # "RSA1"
SIGNATURE_ALG_RSA = 1
KEY_EXCHANGE_ALG_RSA = 1
BB_RSA_KEY_BLOB = 0x0006
BB_RSA_SIGNATURE_BLOB = 0x0008
MAX_CERT_BLOBS = 32
MAX_MODULUS_BYTES = 1024  # 8192-bit keys; anything larger is treated as malformed

# Terminal Services signing key, MS-RDPBCGR 5.3.3.1.1 (public; it proves integrity, not identity).
TS_MODULUS = int.from_bytes(
    bytes.fromhex(
        "3d3a5ebd72433ec94dbbc11e4aba5fcb3e882087eff5c1e2d7b76b9af2524595"
        "ce63656b583afeef7ce7bffe3df65c7d6c5e06091af561bb2093095f056dea87"
    ),
    "little",
)
TS_EXPONENT = 0xC0887B5B
TS_PRIVATE_EXPONENT = int.from_bytes(  # published alongside; used only to build test certificates
    bytes.fromhex(
        "87a71932da11875558001616256568f8243ee6fae9674994cf92cc3399e80860"
        "179a129f24ddb12499c73ab80a7b0ddd350779170b519bb3c7100113e73ff35f"
    ),
    "little",
)


class CertChainVersion(enum.IntEnum):
    CERT_CHAIN_VERSION_1 = 1  # proprietary
    CERT_CHAIN_VERSION_2 = 2  # X.509 chain


def _padded_hash(signed: bytes) -> bytes:
    """5.3.3.1.2: MD5 || 0x00 || 0xFF * 45 || 0x01, then a zero high byte (64 bytes, LE)."""
    return hashlib.md5(signed).digest() + b"\x00" + b"\xff" * 45 + b"\x01\x00"


def verify_signature(signed: bytes, signature_le: bytes) -> bool:
    """True when ``signature_le`` (64+ bytes, little-endian) signs ``signed`` with the TS key."""
    value = int.from_bytes(signature_le[:64], "little")
    if value >= TS_MODULUS:
        return False
    return pow(value, TS_EXPONENT, TS_MODULUS).to_bytes(64, "little") == _padded_hash(signed)


def sign(signed: bytes) -> bytes:
    """72-byte signature blob over ``signed`` with the published TS private key (for tests and
    the emulator)."""
    value = int.from_bytes(_padded_hash(signed), "little")
    return pow(value, TS_PRIVATE_EXPONENT, TS_MODULUS).to_bytes(64, "little") + b"\x00" * 8


@dataclass(frozen=True)
class ProprietaryCertificate:
    dw_version: int
    sig_alg_id: int
    key_alg_id: int
    public_exponent: int
    modulus: int
    bit_length: int
    key_len: int
    data_len: int
    signature: bytes
    verified: bool

    @property
    def permanent(self) -> bool:
        return not self.dw_version & TEMPORARY_BIT

    @property
    def cert_type(self) -> str:
        return "proprietary"

    @property
    def key_type(self) -> str:
        """The public key's algorithm: always RSA (dwKeyAlgId KEY_EXCHANGE_ALG_RSA, an RSA1 blob,
        MS-RDPBCGR 2.2.1.4.3.1.1); Zeek's rdp.log calls this cert_type "RSA"."""
        return "RSA"

    @property
    def key_text(self) -> str:
        """E.g. ``RSA 512-bit, exponent 65537`` (dwBitLen of the RSA_PUBLIC_KEY, 2.2.1.4.3.1.1.1)."""
        return f"{self.key_type} {self.bit_length}-bit, exponent {self.public_exponent}"

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "proprietary",
            "key_type": self.key_type,
            "dw_version": f"0x{self.dw_version:08x}",
            "permanent": self.permanent,
            "sig_alg_id": self.sig_alg_id,
            "key_alg_id": self.key_alg_id,
            "public_exponent": self.public_exponent,
            "bit_length": self.bit_length,
            "modulus_bits": self.modulus.bit_length(),
            "key_len": self.key_len,
            "data_len": self.data_len,
            "signature_hex": self.signature.hex(),
            "verified": self.verified,
        }


@dataclass(frozen=True)
class X509Info:
    """What rdprobe reports about one certificate of the chain (None where unreadable)."""

    subject: str | None
    issuer: str | None
    serial: str | None
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    key_bits: int | None
    public_exponent: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = dict(self.__dict__)
        for key in ("not_before", "not_after"):
            value = out[key]
            out[key] = value.isoformat() if isinstance(value, dt.datetime) else None
        return out


@dataclass(frozen=True)
class X509Chain:
    dw_version: int
    certs: tuple[bytes, ...]  # DER, in wire order; the last one is the server's (leaf)
    infos: tuple[X509Info, ...]

    @property
    def permanent(self) -> bool:
        return not self.dw_version & TEMPORARY_BIT

    @property
    def cert_type(self) -> str:
        return "x509"

    @property
    def key_text(self) -> str | None:
        """The server's (last) certificate's RSA key, e.g. ``RSA 2048-bit, exponent 65537``;
        None when its key was not read."""
        leaf = self.infos[-1] if self.infos else None
        if leaf is None or leaf.key_bits is None:
            return None
        return f"RSA {leaf.key_bits}-bit, exponent {leaf.public_exponent}"

    def to_dict(self) -> dict[str, object]:
        return {
            "type": "x509",
            "dw_version": f"0x{self.dw_version:08x}",
            "permanent": self.permanent,
            "count": len(self.certs),
            "certs": [info.to_dict() for info in self.infos],
        }


ServerCertificate = ProprietaryCertificate | X509Chain


def _u32(data: bytes, offset: int, what: str) -> int:
    if offset + 4 > len(data):
        raise ProtocolError(f"truncated {what}", offset)
    return struct.unpack_from("<I", data, offset)[0]


def _u16(data: bytes, offset: int, what: str) -> int:
    if offset + 2 > len(data):
        raise ProtocolError(f"truncated {what}", offset)
    return struct.unpack_from("<H", data, offset)[0]


def parse_server_certificate(data: bytes) -> ServerCertificate:
    """SERVER_CERTIFICATE -> ProprietaryCertificate or X509Chain (ProtocolError if malformed).

    Cached (the values are frozen): the MCS probes of one listener, the first and each
    encryption method alone, get the same certificate, whose parse and RSA signature check
    (``pow``) cost more than the rest of a Server Security Data; 512 covers the listeners a
    sweep has in flight. A malformed certificate raises each time (errors are not cached)."""
    return _parse_server_certificate(bytes(data))  # the key: any buffer, as bytes


@functools.lru_cache(maxsize=512)
def _parse_server_certificate(data: bytes) -> ServerCertificate:
    dw_version = _u32(data, 0, "dwVersion")
    chain = dw_version & ~TEMPORARY_BIT
    if chain == CertChainVersion.CERT_CHAIN_VERSION_1:
        return _parse_proprietary(data, dw_version)
    if chain == CertChainVersion.CERT_CHAIN_VERSION_2:
        return _parse_x509_chain(data, dw_version)
    raise ProtocolError(f"unknown certChainVersion {chain}", 0)


def _parse_proprietary(data: bytes, dw_version: int) -> ProprietaryCertificate:
    sig_alg, key_alg = _u32(data, 4, "dwSigAlgId"), _u32(data, 8, "dwKeyAlgId")
    if sig_alg != SIGNATURE_ALG_RSA or key_alg != KEY_EXCHANGE_ALG_RSA:
        raise ProtocolError(f"dwSigAlgId {sig_alg} / dwKeyAlgId {key_alg}, expected 1/1", 4)
    if _u16(data, 12, "wPublicKeyBlobType") != BB_RSA_KEY_BLOB:
        raise ProtocolError("wPublicKeyBlobType is not BB_RSA_KEY_BLOB", 12)
    blob_len = _u16(data, 14, "wPublicKeyBlobLen")
    blob_end = 16 + blob_len
    if blob_end > len(data) or blob_len < 20:
        raise ProtocolError(f"PublicKeyBlob of {blob_len} bytes does not fit", 14)
    magic, key_len, bit_len, data_len, exponent = struct.unpack_from("<IIIII", data, 16)
    if magic != RSA1_MAGIC:
        raise ProtocolError(f"RSA_PUBLIC_KEY magic 0x{magic:08x}, expected RSA1", 16)
    modulus_len = blob_len - 20
    if key_len != modulus_len or not 8 < modulus_len <= MAX_MODULUS_BYTES:
        raise ProtocolError(f"keylen {key_len} vs modulus of {modulus_len} bytes", 20)
    if bit_len > 8 * (key_len - 8) or data_len != bit_len // 8 - 1:
        raise ProtocolError(f"bitlen {bit_len} / datalen {data_len} inconsistent", 24)
    modulus = int.from_bytes(data[36:blob_end], "little")
    if _u16(data, blob_end, "wSignatureBlobType") != BB_RSA_SIGNATURE_BLOB:
        raise ProtocolError("wSignatureBlobType is not BB_RSA_SIGNATURE_BLOB", blob_end)
    sig_len = _u16(data, blob_end + 2, "wSignatureBlobLen")
    sig_start = blob_end + 4
    if sig_len < 64 or sig_start + sig_len > len(data):
        raise ProtocolError(f"SignatureBlob of {sig_len} bytes does not fit", blob_end + 2)
    signature = bytes(data[sig_start : sig_start + sig_len])
    verified = sig_len == 72 and verify_signature(bytes(data[:blob_end]), signature)
    return ProprietaryCertificate(
        dw_version, sig_alg, key_alg, exponent, modulus, bit_len, key_len, data_len, signature,
        verified,
    )  # fmt: skip


def _parse_x509_chain(data: bytes, dw_version: int) -> X509Chain:
    count = _u32(data, 4, "NumCertBlobs")
    if not 1 <= count <= MAX_CERT_BLOBS:
        raise ProtocolError(f"NumCertBlobs {count} outside 1..{MAX_CERT_BLOBS}", 4)
    pos, certs = 8, []
    for _ in range(count):
        size = _u32(data, pos, "cbCert")
        if size == 0 or pos + 4 + size > len(data):
            raise ProtocolError(f"certificate blob of {size} bytes does not fit", pos)
        certs.append(bytes(data[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return X509Chain(dw_version, tuple(certs), tuple(describe_x509(c) for c in certs))


def _rsa_from_spki(certificate: bytes) -> tuple[int, int]:
    """(bits, exponent) read from the DER by hand: Windows TS licensing certificates use key OIDs
    cryptography refuses (1.3.14.3.2.15, 1.2.840.113549.1.1.4) though the key is plain PKCS#1."""
    _oid, key = der.subject_public_key_info(certificate)
    modulus, exponent = der.rsa_public_key(key)
    return modulus.bit_length(), exponent


def describe_x509(certificate: bytes) -> X509Info:
    """Subject, issuer, validity and key size of one DER certificate; never raises."""
    from cryptography import x509

    try:
        with warnings.catch_warnings():  # e.g. a non-positive serial in a mutated certificate
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(certificate)
            subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
            serial = format(cert.serial_number, "X")
            before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except Exception as exc:  # cryptography raises ValueError and friends on odd DER
        return X509Info(None, None, None, None, None, None, None, f"unreadable: {exc}")
    try:
        bits, exponent = _rsa_from_spki(certificate)
    except ProtocolError as exc:
        return X509Info(subject, issuer, serial, before, after, None, None, str(exc))
    return X509Info(subject, issuer, serial, before, after, bits, exponent)


def build_proprietary_certificate(
    modulus: int, public_exponent: int = 65537, *, temporary: bool = False, signature: bytes = b""
) -> bytes:
    """PROPRIETARYSERVERCERTIFICATE signed with the TS key unless ``signature`` is given."""
    mod_bytes = (modulus.bit_length() + 7) // 8
    bit_len = mod_bytes * 8
    blob = struct.pack("<IIIII", RSA1_MAGIC, mod_bytes + 8, bit_len, bit_len // 8 - 1,
                       public_exponent)  # fmt: skip
    blob += modulus.to_bytes(mod_bytes, "little") + b"\x00" * 8
    dw_version = CertChainVersion.CERT_CHAIN_VERSION_1 | (TEMPORARY_BIT if temporary else 0)
    head = struct.pack("<IIIHH", dw_version, 1, 1, BB_RSA_KEY_BLOB, len(blob)) + blob
    signature = signature or sign(head)
    return head + struct.pack("<HH", BB_RSA_SIGNATURE_BLOB, len(signature)) + signature


def build_x509_chain(certs: list[bytes], *, temporary: bool = False) -> bytes:
    """X.509 chain form (5.3.3.2) with the 8 + 4n bytes of padding Windows appends."""
    dw_version = CertChainVersion.CERT_CHAIN_VERSION_2 | (TEMPORARY_BIT if temporary else 0)
    body = struct.pack("<II", dw_version, len(certs))
    for cert in certs:
        body += struct.pack("<I", len(cert)) + cert
    return body + b"\x00" * (8 + 4 * len(certs))
