"""Names of the status codes a CredSSP server puts in TSRequest.errorCode (MS-CSSP 2.2.1).

MS-CSSP 3.1.5 makes errorCode an NTSTATUS from TSRequest version 3 on; the values are those of
MS-ERREF 2.3.1. Windows also reports SSPI failures there as HRESULTs (MS-ERREF 2.1.1, facility
SSPI 0x009), so the few an NLA logon can meet are named too. Which code a given account problem
produces is decided by the server's LSA, not by MS-CSSP: the analysis says so where it matters.
"""

from __future__ import annotations

import enum


class NtStatus(enum.IntEnum):
    """MS-ERREF 2.3.1 values that a logon through CredSSP/NTLM can end with."""

    STATUS_SUCCESS = 0x00000000
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_ACCESS_DENIED = 0xC0000022
    STATUS_NO_LOGON_SERVERS = 0xC000005E
    STATUS_NO_SUCH_USER = 0xC0000064
    STATUS_WRONG_PASSWORD = 0xC000006A
    STATUS_PASSWORD_RESTRICTION = 0xC000006C
    STATUS_LOGON_FAILURE = 0xC000006D
    STATUS_ACCOUNT_RESTRICTION = 0xC000006E
    STATUS_INVALID_LOGON_HOURS = 0xC000006F
    STATUS_INVALID_WORKSTATION = 0xC0000070
    STATUS_PASSWORD_EXPIRED = 0xC0000071
    STATUS_ACCOUNT_DISABLED = 0xC0000072
    STATUS_TIME_DIFFERENCE_AT_DC = 0xC0000133
    STATUS_LOGON_TYPE_NOT_GRANTED = 0xC000015B
    STATUS_TRUSTED_RELATIONSHIP_FAILURE = 0xC000018D
    STATUS_TRUST_FAILURE = 0xC0000190
    STATUS_NETLOGON_NOT_STARTED = 0xC0000192
    STATUS_ACCOUNT_EXPIRED = 0xC0000193
    STATUS_PASSWORD_MUST_CHANGE = 0xC0000224
    STATUS_ACCOUNT_LOCKED_OUT = 0xC0000234
    STATUS_SMARTCARD_LOGON_REQUIRED = 0xC00002FA
    STATUS_MUTUAL_AUTHENTICATION_FAILED = 0xC00002C3
    STATUS_BAD_BINDINGS = 0xC000035B
    STATUS_DOWNGRADE_DETECTED = 0xC0000388
    STATUS_AUTHENTICATION_FIREWALL_FAILED = 0xC0000413
    STATUS_NTLM_BLOCKED = 0xC0000418


class SspiHresult(enum.IntEnum):
    """MS-ERREF 2.1.1 HRESULTs of the SSPI facility seen in errorCode."""

    SEC_E_UNSUPPORTED_FUNCTION = 0x80090302
    SEC_E_INTERNAL_ERROR = 0x80090304
    SEC_E_NO_AUTHENTICATING_AUTHORITY = 0x80090311
    SEC_E_INVALID_TOKEN = 0x80090308
    SEC_E_LOGON_DENIED = 0x8009030C
    SEC_E_MESSAGE_ALTERED = 0x8009030F
    SEC_E_WRONG_PRINCIPAL = 0x80090322
    SEC_E_TIME_SKEW = 0x80090324
    SEC_E_BAD_BINDINGS = 0x80090346


def status_name(code: int) -> str | None:
    """The MS-ERREF name of an errorCode (unsigned 32-bit), or None when it is not known."""
    code &= 0xFFFFFFFF
    for table in (NtStatus, SspiHresult):
        if code in table._value2member_map_:
            return table(code).name
    return None


def describe(code: int) -> str:
    """'STATUS_LOGON_FAILURE (0xc000006d)', or the bare hex for an unknown code."""
    name = status_name(code)
    text = f"0x{code & 0xFFFFFFFF:08x}"
    return f"{name} ({text})" if name else text
