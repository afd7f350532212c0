"""The credential half of CredSSP (MS-CSSP 2.2.1.2, 3.1.5): pubKeyAuth values and TSCredentials.

Pure functions: the NTLM context that seals these values lives in rdprobe.live.auth.

* pubKeyAuth binds the NTLM exchange to the TLS server key. The key is the SubjectPublicKey of
  the server certificate (the BIT STRING contents of SubjectPublicKeyInfo, MS-CSSP 3.1.5).
  TSRequest versions 2-4: the client seals the key itself and the server answers with the key
  whose first byte is incremented by one. Versions 5 and 6 (the CVE-2018-0886 fix): the client
  sends a 32-byte clientNonce and seals SHA-256("CredSSP Client-To-Server Binding Hash\\0" ||
  nonce || key); the server answers with the same hash under "Server-To-Client".
* TSCredentials { credType [0] INTEGER, credentials [1] OCTET STRING } with credType 1 holding
  TSPasswordCreds { domainName [0], userName [1], password [2] OCTET STRING } in UTF-16LE.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rdprobe.protocol import der
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

CLIENT_NONCE_LENGTH = 32
NONCE_FROM_VERSION = 5
CLIENT_TO_SERVER_MAGIC = b"CredSSP Client-To-Server Binding Hash\x00"
SERVER_TO_CLIENT_MAGIC = b"CredSSP Server-To-Client Binding Hash\x00"
CRED_TYPE_PASSWORD = 1
CRED_TYPE_SMARTCARD = 2
CRED_TYPE_REMOTE_GUARD = 6


def uses_nonce(version: int) -> bool:
    """Whether the negotiated TSRequest version hashes the key with a client nonce."""
    return version >= NONCE_FROM_VERSION


def client_pub_key_auth(public_key: bytes, version: int, nonce: bytes | None) -> bytes:
    """The value the client seals into its pubKeyAuth (before encryption)."""
    if uses_nonce(version):
        _check_nonce(nonce)
        assert nonce is not None
        return hashlib.sha256(CLIENT_TO_SERVER_MAGIC + nonce + public_key).digest()
    return public_key


def expected_server_pub_key_auth(public_key: bytes, version: int, nonce: bytes | None) -> bytes:
    """The value a genuine server's pubKeyAuth must unseal to."""
    if uses_nonce(version):
        _check_nonce(nonce)
        assert nonce is not None
        return hashlib.sha256(SERVER_TO_CLIENT_MAGIC + nonce + public_key).digest()
    if not public_key:
        raise ValueError("empty public key")
    return bytes([(public_key[0] + 1) & 0xFF]) + public_key[1:]


def _check_nonce(nonce: bytes | None) -> None:
    if nonce is None or len(nonce) != CLIENT_NONCE_LENGTH:
        raise ValueError("TSRequest version 5+ needs a 32-byte client nonce")


def subject_public_key(certificate_der: bytes) -> bytes:
    """The key MS-CSSP 3.1.5 binds: SubjectPublicKey of the server certificate, without the
    BIT STRING's unused-bits octet (der.subject_public_key_info, any key type)."""
    return der.subject_public_key_info(certificate_der)[1]


@dataclass(frozen=True)
class PasswordCreds:
    """TSPasswordCreds (MS-CSSP 2.2.1.2.1); repr never shows the password."""

    domain: str
    user: str
    password: str

    def __repr__(self) -> str:
        return f"PasswordCreds(domain={self.domain!r}, user={self.user!r}, password=<hidden>)"


def build_ts_credentials(creds: PasswordCreds) -> bytes:
    """TSCredentials(credType 1, TSPasswordCreds) in DER (MS-CSSP 2.2.1.2)."""
    inner = der.sequence(
        der.explicit(0, der.octet_string(creds.domain.encode("utf-16-le"))),
        der.explicit(1, der.octet_string(creds.user.encode("utf-16-le"))),
        der.explicit(2, der.octet_string(creds.password.encode("utf-16-le"))),
    )
    return der.sequence(
        der.explicit(0, der.integer(CRED_TYPE_PASSWORD)),
        der.explicit(1, der.octet_string(inner)),
    )


def parse_ts_credentials(data: bytes) -> tuple[int, PasswordCreds | None]:
    """(credType, PasswordCreds for credType 1 else None); trailing bytes are ignored.

    Only ProtocolError escapes (used by the emulator's CredSSP server and the tests).
    """
    try:
        body, _ = der.expect(data, der.TAG_SEQUENCE)
        fields = dict(_explicit_fields(body, "TSCredentials"))
        if 0 not in fields or 1 not in fields:
            raise ProtocolError("TSCredentials needs credType [0] and credentials [1]")
        cred_type = der.decode_integer(_inner(fields[0], der.TAG_INTEGER, "credType"))
        blob = _inner(fields[1], der.TAG_OCTET_STRING, "credentials")
        if cred_type != CRED_TYPE_PASSWORD:
            return cred_type, None
        pw_body, end = der.expect(blob, der.TAG_SEQUENCE)
        if end != len(blob):
            raise ProtocolError("trailing bytes after TSPasswordCreds")
        pw = dict(_explicit_fields(pw_body, "TSPasswordCreds"))
        if set(pw) != {0, 1, 2}:
            raise ProtocolError("TSPasswordCreds needs domainName, userName and password")
        text = [_utf16(_inner(pw[i], der.TAG_OCTET_STRING, "TSPasswordCreds")) for i in (0, 1, 2)]
    except NeedMoreData:
        raise ProtocolError("truncated TSCredentials") from None
    return cred_type, PasswordCreds(*text)


def _explicit_fields(body: bytes, what: str) -> list[tuple[int, bytes]]:
    out = []
    for tag, value in der.children(body):
        if tag & 0xE0 != 0xA0:
            raise ProtocolError(f"unexpected DER tag 0x{tag:02x} in {what}")
        out.append((tag & 0x1F, value))
    return out


def _inner(value: bytes, tag: int, what: str) -> bytes:
    inner, end = der.expect(value, tag)
    if end != len(value):
        raise ProtocolError(f"trailing bytes after {what}")
    return inner


def _utf16(raw: bytes) -> str:
    if len(raw) % 2:
        raise ProtocolError("UTF-16LE text of odd length")
    try:
        return raw.decode("utf-16-le")
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-16LE text") from None
