"""T.125 MCS Connect-Initial / Connect-Response (BER) and Disconnect-Provider-Ultimatum (PER).

MS-RDPBCGR 2.2.1.3 (Client MCS Connect Initial), 2.2.1.4 (Server MCS Connect Response) and
2.2.2.3 / T.125 section 7 (DomainMCSPDU). The payloads here are the bytes inside X.224 Data TPDUs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rdprobe.protocol import ber
from rdprobe.protocol.errors import ProtocolError

CONNECT_INITIAL_TAG = 101  # [APPLICATION 101]
CONNECT_RESPONSE_TAG = 102  # [APPLICATION 102]
DPUM_CHOICE = 8  # DomainMCSPDU index of disconnectProviderUltimatum


class Result(enum.IntEnum):
    """T.125 Result ENUMERATED."""

    RT_SUCCESSFUL = 0
    RT_DOMAIN_MERGING = 1
    RT_DOMAIN_NOT_HIERARCHICAL = 2
    RT_NO_SUCH_CHANNEL = 3
    RT_NO_SUCH_DOMAIN = 4
    RT_NO_SUCH_USER = 5
    RT_NOT_ADMITTED = 6
    RT_OTHER_USER_ID = 7
    RT_PARAMETERS_UNACCEPTABLE = 8
    RT_TOKEN_NOT_AVAILABLE = 9
    RT_TOKEN_NOT_POSSESSED = 10
    RT_TOO_MANY_CHANNELS = 11
    RT_TOO_MANY_TOKENS = 12
    RT_TOO_MANY_USERS = 13
    RT_UNSPECIFIED_FAILURE = 14
    RT_USER_REJECTED = 15


class Reason(enum.IntEnum):
    """T.125 Reason ENUMERATED (Disconnect-Provider-Ultimatum)."""

    RN_DOMAIN_DISCONNECTED = 0
    RN_PROVIDER_INITIATED = 1
    RN_TOKEN_PURGED = 2
    RN_USER_REQUESTED = 3
    RN_CHANNEL_PURGED = 4


def _enum_name(enum_type: type[enum.IntEnum], value: int) -> str:
    try:
        return enum_type(value).name
    except ValueError:
        return f"UNKNOWN_{value}"


@dataclass(frozen=True)
class DomainParameters:
    """T.125 DomainParameters, eight INTEGERs in this order."""

    max_channel_ids: int
    max_user_ids: int
    max_token_ids: int
    num_priorities: int
    min_throughput: int
    max_height: int
    max_mcs_pdu_size: int
    protocol_version: int

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.max_channel_ids,
            self.max_user_ids,
            self.max_token_ids,
            self.num_priorities,
            self.min_throughput,
            self.max_height,
            self.max_mcs_pdu_size,
            self.protocol_version,
        )

    def to_dict(self) -> list[int]:
        return list(self.as_tuple())


# The values mstsc sends (MS-RDPBCGR 4.1.3).
MSTSC_TARGET = DomainParameters(34, 2, 0, 1, 0, 1, 0xFFFF, 2)
MSTSC_MINIMUM = DomainParameters(1, 1, 1, 1, 0, 1, 0x420, 2)
MSTSC_MAXIMUM = DomainParameters(0xFFFF, 0xFC17, 0xFFFF, 1, 0, 1, 0xFFFF, 2)


@dataclass(frozen=True)
class ConnectInitial:
    calling_domain_selector: bytes
    called_domain_selector: bytes
    upward_flag: bool
    target_parameters: DomainParameters
    minimum_parameters: DomainParameters
    maximum_parameters: DomainParameters
    user_data: bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "upward_flag": self.upward_flag,
            "target_parameters": self.target_parameters.to_dict(),
            "minimum_parameters": self.minimum_parameters.to_dict(),
            "maximum_parameters": self.maximum_parameters.to_dict(),
            "user_data_len": len(self.user_data),
        }


@dataclass(frozen=True)
class ConnectResponse:
    result: int
    called_connect_id: int
    domain_parameters: DomainParameters
    user_data: bytes

    @property
    def result_name(self) -> str:
        return _enum_name(Result, self.result)

    def to_dict(self) -> dict[str, object]:
        return {
            "result": self.result,
            "result_name": self.result_name,
            "called_connect_id": self.called_connect_id,
            "domain_parameters": self.domain_parameters.to_dict(),
            "user_data_len": len(self.user_data),
        }


@dataclass(frozen=True)
class DisconnectProviderUltimatum:
    reason: int

    @property
    def reason_name(self) -> str:
        return _enum_name(Reason, self.reason)

    def to_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "reason_name": self.reason_name}


# --- Connect-Initial ------------------------------------------------------------------------


def _encode_parameters(params: DomainParameters) -> bytes:
    return ber.encode_sequence(b"".join(ber.encode_integer(v) for v in params.as_tuple()))


def build_connect_initial(
    gcc_user_data: bytes,
    *,
    target: DomainParameters = MSTSC_TARGET,
    minimum: DomainParameters = MSTSC_MINIMUM,
    maximum: DomainParameters = MSTSC_MAXIMUM,
    calling_domain_selector: bytes = b"\x01",
    called_domain_selector: bytes = b"\x01",
    upward_flag: bool = True,
) -> bytes:
    """Connect-Initial carrying ``gcc_user_data`` (a GCC Conference Create Request)."""
    body = b"".join(
        [
            ber.encode_octet_string(calling_domain_selector),
            ber.encode_octet_string(called_domain_selector),
            ber.encode_boolean(upward_flag),
            _encode_parameters(target),
            _encode_parameters(minimum),
            _encode_parameters(maximum),
            ber.encode_octet_string(gcc_user_data),
        ]
    )
    return ber.encode_tlv(ber.encode_application_tag(CONNECT_INITIAL_TAG), body)


def _read_parameters(buf: bytes, offset: int) -> tuple[DomainParameters, int]:
    start, end = ber.read_sequence(buf, offset)
    values = []
    pos = start
    for _ in range(8):
        value, pos = ber.read_integer(buf[:end], pos)
        values.append(value)
    if pos != end:
        raise ProtocolError("extra bytes in DomainParameters", pos)
    return DomainParameters(*values), end


def _application_body(data: bytes, number: int, what: str) -> tuple[int, int]:
    start, end = ber.read_expected(data, 0, ber.CLASS_APPLICATION, number, True, what)
    if end != len(data):
        raise ProtocolError(f"{what}: {len(data) - end} bytes after the PDU", end)
    return start, end


def parse_connect_initial(data: bytes) -> ConnectInitial:
    """Parse the MCS payload of a Client MCS Connect Initial PDU (2.2.1.3)."""
    pos, end = _application_body(data, CONNECT_INITIAL_TAG, "MCS Connect-Initial")
    body = data[:end]
    calling, pos = ber.read_octet_string(body, pos)
    called, pos = ber.read_octet_string(body, pos)
    upward, pos = ber.read_boolean(body, pos)
    target, pos = _read_parameters(body, pos)
    minimum, pos = _read_parameters(body, pos)
    maximum, pos = _read_parameters(body, pos)
    user_data, pos = ber.read_octet_string(body, pos)
    return ConnectInitial(calling, called, upward, target, minimum, maximum, user_data)


# --- Connect-Response -----------------------------------------------------------------------


def build_connect_response(
    gcc_user_data: bytes,
    *,
    result: int = Result.RT_SUCCESSFUL,
    called_connect_id: int = 0,
    domain_parameters: DomainParameters = DomainParameters(34, 3, 0, 1, 0, 1, 0xFFF8, 2),
) -> bytes:
    """Connect-Response (what a server sends; used by the emulator and the tests)."""
    body = b"".join(
        [
            ber.encode_enumerated(result),
            ber.encode_integer(called_connect_id),
            _encode_parameters(domain_parameters),
            ber.encode_octet_string(gcc_user_data),
        ]
    )
    return ber.encode_tlv(ber.encode_application_tag(CONNECT_RESPONSE_TAG), body)


def parse_connect_response(data: bytes) -> ConnectResponse:
    """Parse the MCS payload of a Server MCS Connect Response PDU (2.2.1.4)."""
    pos, end = _application_body(data, CONNECT_RESPONSE_TAG, "MCS Connect-Response")
    body = data[:end]
    result, pos = ber.read_enumerated(body, pos)
    connect_id, pos = ber.read_integer(body, pos)
    params, pos = _read_parameters(body, pos)
    user_data, pos = ber.read_octet_string(body, pos)
    return ConnectResponse(result, connect_id, params, user_data)


# --- Disconnect-Provider-Ultimatum ----------------------------------------------------------


def build_disconnect_provider_ultimatum(reason: int = Reason.RN_USER_REQUESTED) -> bytes:
    """PER DomainMCSPDU: 6-bit choice 8, then the 3-bit reason (rn-user-requested -> 21 80)."""
    return bytes([(DPUM_CHOICE << 2) | ((reason >> 1) & 0x03), (reason & 0x01) << 7])


def is_disconnect_provider_ultimatum(data: bytes) -> bool:
    return len(data) >= 1 and data[0] >> 2 == DPUM_CHOICE


def parse_disconnect_provider_ultimatum(data: bytes) -> DisconnectProviderUltimatum:
    if len(data) < 2:
        raise ProtocolError("truncated Disconnect-Provider-Ultimatum", len(data))
    if data[0] >> 2 != DPUM_CHOICE:
        raise ProtocolError(f"not a Disconnect-Provider-Ultimatum: choice {data[0] >> 2}", 0)
    return DisconnectProviderUltimatum(((data[0] & 0x03) << 1) | (data[1] >> 7))


def parse_server_pdu(data: bytes) -> ConnectResponse | DisconnectProviderUltimatum:
    """What a server sends in reply to Connect-Initial: a Connect-Response or an ultimatum."""
    if data[:2] == b"\x7f\x66":
        return parse_connect_response(data)
    if is_disconnect_provider_ultimatum(data):
        return parse_disconnect_provider_ultimatum(data)
    head = data[:2].hex() or "nothing"
    raise ProtocolError(f"expected MCS Connect-Response or ultimatum, got {head}", 0)
