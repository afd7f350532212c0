"""CredSSP TSRequest (MS-CSSP 2.2.1), build and tolerant parse.

    TSRequest ::= SEQUENCE {
        version     [0] INTEGER,
        negoTokens  [1] NegoData  OPTIONAL,   -- SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }
        authInfo    [2] OCTET STRING OPTIONAL,
        pubKeyAuth  [3] OCTET STRING OPTIONAL,
        errorCode   [4] INTEGER   OPTIONAL,   -- NTSTATUS, version 3 and later
        clientNonce [5] OCTET STRING OPTIONAL }  -- version 5 and later

The parser accepts fields in any order, skips unknown context tags, and ignores bytes after
the outer SEQUENCE. Only ProtocolError (or NeedMoreData) escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdprobe.protocol import der
from rdprobe.protocol.errors import NeedMoreData, ProtocolError

TSREQUEST_MAX_BYTES = 64 * 1024
"""Upper bound for one server TSRequest; real ones are a few hundred bytes."""

CREDSSP_VERSION = 6
"""Highest TSRequest version defined by MS-CSSP (2.2.1)."""


def tsrequest_length(buffer: bytes) -> int:
    """Total bytes of the TSRequest starting *buffer* (its DER framing, MS-CSSP 3.1.5).

    NeedMoreData while the DER header is incomplete; ProtocolError if it is no SEQUENCE or
    announces more than TSREQUEST_MAX_BYTES.
    """
    if buffer and buffer[0] != der.TAG_SEQUENCE:
        raise ProtocolError(f"TSRequest must start with SEQUENCE (0x30), got 0x{buffer[0]:02x}")
    total = der.tlv_total_length(buffer)
    if total > TSREQUEST_MAX_BYTES:
        raise ProtocolError(f"TSRequest of {total} bytes exceeds {TSREQUEST_MAX_BYTES}")
    return total


@dataclass(frozen=True)
class TSRequest:
    """One CredSSP message (MS-CSSP 2.2.1)."""

    version: int
    nego_tokens: tuple[bytes, ...] = ()
    auth_info: bytes | None = None
    pub_key_auth: bytes | None = None
    error_code: int | None = None
    """NTSTATUS as an unsigned 32-bit value (servers encode it signed or unsigned)."""
    client_nonce: bytes | None = None
    unknown_fields: tuple[int, ...] = field(default=())
    """Context tag numbers present but not defined by MS-CSSP."""

    def build(self) -> bytes:
        parts = [der.explicit(0, der.integer(self.version))]
        if self.nego_tokens:
            items = [
                der.sequence(der.explicit(0, der.octet_string(token))) for token in self.nego_tokens
            ]
            parts.append(der.explicit(1, der.sequence(*items)))
        if self.auth_info is not None:
            parts.append(der.explicit(2, der.octet_string(self.auth_info)))
        if self.pub_key_auth is not None:
            parts.append(der.explicit(3, der.octet_string(self.pub_key_auth)))
        if self.error_code is not None:
            code = self.error_code
            signed = code - (1 << 32) if code & 0x80000000 else code
            parts.append(der.explicit(4, der.integer(signed)))
        if self.client_nonce is not None:
            parts.append(der.explicit(5, der.octet_string(self.client_nonce)))
        return der.sequence(*parts)

    @classmethod
    def parse(cls, data: bytes) -> TSRequest:
        """Parse one TSRequest from the start of *data*."""
        total = tsrequest_length(data)
        body, _end = der.expect(data[:total], der.TAG_SEQUENCE)
        version: int | None = None
        tokens: tuple[bytes, ...] = ()
        values: dict[int, bytes] = {}
        error_code: int | None = None
        unknown: list[int] = []
        for tag, value in der.children(body):
            if tag & 0xE0 != 0xA0:
                raise ProtocolError(f"unexpected DER tag 0x{tag:02x} in TSRequest")
            number = tag & 0x1F
            if number == 0:
                version = der.decode_integer(_single(value, der.TAG_INTEGER, "version"))
            elif number == 1:
                tokens = _parse_nego_data(value)
            elif number in (2, 3, 5):
                values[number] = _single(value, der.TAG_OCTET_STRING, f"field [{number}]")
            elif number == 4:
                raw = der.decode_integer(_single(value, der.TAG_INTEGER, "errorCode"))
                error_code = raw & 0xFFFFFFFF
            else:
                unknown.append(number)
        if version is None:
            raise ProtocolError("TSRequest without version [0]")
        return cls(
            version=version,
            nego_tokens=tokens,
            auth_info=values.get(2),
            pub_key_auth=values.get(3),
            error_code=error_code,
            client_nonce=values.get(5),
            unknown_fields=tuple(unknown),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "nego_tokens": len(self.nego_tokens),
            "auth_info": self.auth_info is not None,
            "pub_key_auth": self.pub_key_auth is not None,
            "error_code": None if self.error_code is None else f"0x{self.error_code:08x}",
            "client_nonce": self.client_nonce is not None,
        }


def _single(value: bytes, tag: int, what: str) -> bytes:
    """Contents of the one element inside an explicit tag."""
    try:
        inner, end = der.expect(value, tag)
    except NeedMoreData:
        raise ProtocolError(f"truncated {what}") from None
    if end != len(value):
        raise ProtocolError(f"trailing bytes after {what}")
    return inner


def _parse_nego_data(value: bytes) -> tuple[bytes, ...]:
    """NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }."""
    outer = _single(value, der.TAG_SEQUENCE, "negoTokens")
    tokens: list[bytes] = []
    for tag, item in der.children(outer):
        if tag != der.TAG_SEQUENCE:
            raise ProtocolError(f"NegoData item with tag 0x{tag:02x}")
        for inner_tag, inner in der.children(item):
            if inner_tag == der.context(0):
                tokens.append(_single(inner, der.TAG_OCTET_STRING, "negoToken"))
    return tuple(tokens)
