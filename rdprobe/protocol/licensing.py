"""Server licensing PDUs: License Request, Platform Challenge, Error Alert (and the rest by name).

MS-RDPBCGR 2.2.1.12 (Server License Error PDU - Valid Client), 2.2.1.12.1.1 (LICENSE_PREAMBLE:
bMsgType, flags, wMsgSize incl. the preamble), 2.2.1.12.1.2 (LICENSE_BINARY_BLOB),
2.2.1.12.1.3 (LICENSE_ERROR_MESSAGE); MS-RDPELE 2.2.2.1 (SERVER_LICENSE_REQUEST: ServerRandom,
ProductInfo, KeyExchangeList, ServerCertificate, ScopeList), 2.2.2.1.1 (PRODUCT_INFO),
2.2.2.1.2 (SCOPE_LIST), 2.2.2.4 (SERVER_PLATFORM_CHALLENGE). An Error Alert with
STATUS_VALID_CLIENT and ST_NO_TRANSITION means the server needs no licence exchange.
The PDU follows a security header with SEC_LICENSE_PKT (``rdprobe.protocol.sechdr``).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.names import enum_name

PREAMBLE_VERSION_3_0 = 0x03
PREAMBLE_VERSION_2_0 = 0x02
EXTENDED_ERROR_MSG_SUPPORTED = 0x80
MAX_SCOPES = 64


class LicenseMsgType(enum.IntEnum):
    LICENSE_REQUEST = 0x01
    PLATFORM_CHALLENGE = 0x02
    NEW_LICENSE = 0x03
    UPGRADE_LICENSE = 0x04
    LICENSE_INFO = 0x12
    NEW_LICENSE_REQUEST = 0x13
    PLATFORM_CHALLENGE_RESPONSE = 0x15
    ERROR_ALERT = 0xFF


class LicenseError(enum.IntEnum):
    ERR_INVALID_SERVER_CERTIFICATE = 0x00000001
    ERR_NO_LICENSE = 0x00000002
    ERR_INVALID_MAC = 0x00000003
    ERR_INVALID_SCOPE = 0x00000004
    ERR_NO_LICENSE_SERVER = 0x00000006
    STATUS_VALID_CLIENT = 0x00000007
    ERR_INVALID_CLIENT = 0x00000008
    ERR_INVALID_PRODUCTID = 0x0000000B
    ERR_INVALID_MESSAGE_LEN = 0x0000000C


class StateTransition(enum.IntEnum):
    ST_TOTAL_ABORT = 0x00000001
    ST_NO_TRANSITION = 0x00000002
    ST_RESET_PHASE_TO_START = 0x00000003
    ST_RESEND_LAST_MESSAGE = 0x00000004


class BlobType(enum.IntEnum):
    BB_ANY_BLOB = 0x0000
    BB_DATA_BLOB = 0x0001
    BB_RANDOM_BLOB = 0x0002
    BB_CERTIFICATE_BLOB = 0x0003
    BB_ERROR_BLOB = 0x0004
    BB_ENCRYPTED_DATA_BLOB = 0x0009
    BB_KEY_EXCHG_ALG_BLOB = 0x000D
    BB_SCOPE_BLOB = 0x000E
    BB_CLIENT_USER_NAME_BLOB = 0x000F
    BB_CLIENT_MACHINE_NAME_BLOB = 0x0010


def _name(table: type[enum.IntEnum], value: int) -> str:
    return enum_name(table, value, unknown="UNKNOWN_0x{value:x}")


@dataclass(frozen=True)
class ErrorAlert:
    error_code: int
    state_transition: int
    error_info: bytes = b""

    @property
    def error_name(self) -> str:
        return _name(LicenseError, self.error_code)

    @property
    def transition_name(self) -> str:
        return _name(StateTransition, self.state_transition)

    @property
    def valid_client(self) -> bool:
        return self.error_code == LicenseError.STATUS_VALID_CLIENT


@dataclass(frozen=True)
class ProductInfo:
    version: int
    company_name: str
    product_id: str


@dataclass(frozen=True)
class LicenseRequest:
    server_random: bytes
    product: ProductInfo
    key_exchange: int | None  # the first KEY_EXCHANGE_ALG (1 = RSA), None if the list is empty
    certificate: bytes
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class PlatformChallenge:
    connect_flags: int
    encrypted_challenge: bytes
    mac: bytes


@dataclass(frozen=True)
class OtherLicensePdu:
    msg_type: int
    body: bytes

    @property
    def type_name(self) -> str:
        return _name(LicenseMsgType, self.msg_type)


@dataclass(frozen=True)
class NewLicenseRequest:
    """MS-RDPELE 2.2.2.2, what a client without a licence answers a License Request with."""

    key_exchange: int
    platform_id: int
    client_random: bytes
    encrypted_premaster: bytes
    user_name: str
    machine_name: str


LicensePdu = ErrorAlert | LicenseRequest | PlatformChallenge | NewLicenseRequest | OtherLicensePdu


def _u32(data: bytes, pos: int, what: str) -> int:
    if pos + 4 > len(data):
        raise ProtocolError(f"truncated {what}", pos)
    return struct.unpack_from("<I", data, pos)[0]


def _blob(data: bytes, pos: int, what: str) -> tuple[int, bytes, int]:
    if pos + 4 > len(data):
        raise ProtocolError(f"truncated {what} blob header", pos)
    blob_type, length = struct.unpack_from("<HH", data, pos)
    end = pos + 4 + length
    if end > len(data):
        raise ProtocolError(f"{what} blob of {length} bytes does not fit", pos + 2)
    return blob_type, bytes(data[pos + 4 : end]), end


def _sized(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    size = _u32(data, pos, f"cb{what}")
    end = pos + 4 + size
    if end > len(data):
        raise ProtocolError(f"{what} of {size} bytes does not fit", pos)
    return bytes(data[pos + 4 : end]), end


def _text(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace").split("\x00", 1)[0]


def parse_license_pdu(data: bytes) -> LicensePdu:
    """One licensing PDU (after the security header): preamble, then the message."""
    if len(data) < 4:
        raise ProtocolError(f"licensing preamble needs 4 bytes, got {len(data)}", 0)
    msg_type, _flags, size = struct.unpack_from("<BBH", data, 0)
    if size < 4 or size > len(data):
        raise ProtocolError(f"wMsgSize {size} for {len(data)} bytes", 2)
    body = bytes(data[4:size])
    if msg_type == LicenseMsgType.ERROR_ALERT:
        code = _u32(body, 0, "dwErrorCode")
        transition = _u32(body, 4, "dwStateTransition")
        _kind, info, _end = _blob(body, 8, "bbErrorInfo")
        return ErrorAlert(code, transition, info)
    if msg_type == LicenseMsgType.LICENSE_REQUEST:
        return _parse_request(body)
    if msg_type == LicenseMsgType.PLATFORM_CHALLENGE:
        flags = _u32(body, 0, "ConnectFlags")
        _kind, challenge, end = _blob(body, 4, "EncryptedPlatformChallenge")
        if end + 16 > len(body):
            raise ProtocolError("truncated MACData", end)
        return PlatformChallenge(flags, challenge, body[end : end + 16])
    if msg_type == LicenseMsgType.NEW_LICENSE_REQUEST:
        return _parse_new_request(body)
    return OtherLicensePdu(msg_type, body)


def _parse_new_request(body: bytes) -> NewLicenseRequest:
    key_exchange = _u32(body, 0, "PreferredKeyExchangeAlg")
    platform = _u32(body, 4, "PlatformId")
    if len(body) < 40:
        raise ProtocolError("truncated ClientRandom", 8)
    _kind, premaster, pos = _blob(body, 40, "EncryptedPreMasterSecret")
    _kind, user, pos = _blob(body, pos, "ClientUserName")
    _kind, machine, pos = _blob(body, pos, "ClientMachineName")
    return NewLicenseRequest(
        key_exchange, platform, bytes(body[8:40]), premaster,
        user.split(b"\x00", 1)[0].decode("latin-1"), machine.split(b"\x00", 1)[0].decode("latin-1"),
    )  # fmt: skip


def _parse_request(body: bytes) -> LicenseRequest:
    if len(body) < 32:
        raise ProtocolError("truncated ServerRandom", 0)
    server_random = body[:32]
    version = _u32(body, 32, "ProductInfo dwVersion")
    company, pos = _sized(body, 36, "CompanyName")
    product, pos = _sized(body, pos, "ProductId")
    _kind, exchange, pos = _blob(body, pos, "KeyExchangeList")
    key_exchange = struct.unpack_from("<I", exchange, 0)[0] if len(exchange) >= 4 else None
    _kind, certificate, pos = _blob(body, pos, "ServerCertificate")
    count = _u32(body, pos, "ScopeCount")
    if count > MAX_SCOPES:
        raise ProtocolError(f"ScopeCount {count} (at most {MAX_SCOPES})", pos)
    pos += 4
    scopes = []
    for _ in range(count):
        _kind, scope, pos = _blob(body, pos, "Scope")
        scopes.append(scope.split(b"\x00", 1)[0].decode("latin-1"))
    return LicenseRequest(
        server_random, ProductInfo(version, _text(company), _text(product)), key_exchange,
        certificate, tuple(scopes),
    )  # fmt: skip


# --- builders (emulator and tests) ----------------------------------------------------------


def _preamble(msg_type: int, body: bytes) -> bytes:
    return struct.pack("<BBH", msg_type, PREAMBLE_VERSION_3_0, len(body) + 4) + body


def build_error_alert(
    code: int = LicenseError.STATUS_VALID_CLIENT,
    transition: int = StateTransition.ST_NO_TRANSITION,
    info: bytes = b"",
) -> bytes:
    body = struct.pack("<IIHH", code, transition, BlobType.BB_ERROR_BLOB, len(info)) + info
    return _preamble(LicenseMsgType.ERROR_ALERT, body)


def _blob_bytes(blob_type: int, data: bytes) -> bytes:
    return struct.pack("<HH", blob_type, len(data)) + data


def build_license_request(
    server_random: bytes,
    *,
    company: str = "Microsoft Corporation",
    product_id: str = "A02",
    version: int = 0x00060000,
    certificate: bytes = b"",
    scopes: tuple[str, ...] = ("microsoft.com",),
) -> bytes:
    company_raw = company.encode("utf-16-le") + b"\x00\x00"
    product_raw = product_id.encode("utf-16-le") + b"\x00\x00"
    body = server_random + struct.pack("<II", version, len(company_raw)) + company_raw
    body += struct.pack("<I", len(product_raw)) + product_raw
    body += _blob_bytes(BlobType.BB_KEY_EXCHG_ALG_BLOB, struct.pack("<I", 1))
    body += _blob_bytes(BlobType.BB_CERTIFICATE_BLOB, certificate)
    body += struct.pack("<I", len(scopes))
    body += b"".join(_blob_bytes(BlobType.BB_SCOPE_BLOB, s.encode() + b"\x00") for s in scopes)
    return _preamble(LicenseMsgType.LICENSE_REQUEST, body)


KEY_EXCHANGE_ALG_RSA = 0x00000001
#: CLIENT_OS_ID_WINNT_POST_52 | CLIENT_IMAGE_ID_MICROSOFT (MS-RDPELE 2.2.2.2)
PLATFORM_ID = 0x04010000


def build_new_license_request(
    client_random: bytes,
    encrypted_premaster: bytes,
    *,
    user_name: str = "",
    machine_name: str = "rdprobe",
    platform_id: int = PLATFORM_ID,
) -> bytes:
    """Client New License Request: the premaster secret arrives already encrypted with the
    server's licensing key (little-endian RSA plus 8 zero bytes, MS-RDPELE 5.1.1.1)."""
    body = struct.pack("<II", KEY_EXCHANGE_ALG_RSA, platform_id) + client_random
    body += _blob_bytes(BlobType.BB_RANDOM_BLOB, encrypted_premaster)
    body += _blob_bytes(BlobType.BB_CLIENT_USER_NAME_BLOB, user_name.encode("latin-1") + b"\x00")
    body += _blob_bytes(BlobType.BB_CLIENT_MACHINE_NAME_BLOB,
                        machine_name.encode("latin-1") + b"\x00")  # fmt: skip
    return _preamble(LicenseMsgType.NEW_LICENSE_REQUEST, body)


def build_platform_challenge(challenge: bytes, mac: bytes = b"\x00" * 16) -> bytes:
    body = struct.pack("<I", 0) + _blob_bytes(BlobType.BB_ANY_BLOB, challenge) + mac[:16]
    return _preamble(LicenseMsgType.PLATFORM_CHALLENGE, body)
