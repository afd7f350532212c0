"""The server half of CredSSP for emulator profiles (MS-CSSP 3.2.5), NTLM from pyspnego.

Spec-built: no recorded Windows logon is replayed here (the only recorded one, WIN10CGR, has no
failure in it). A real NTLM acceptor checks the client's AUTHENTICATE against the profile's
throwaway accounts, so rdprobe's client meets a genuine exchange for every TSRequest version
2-6; the failure profiles then answer as MS-CSSP 3.1.5 says a server reports an error (errorCode,
version 3 and later) with the NTSTATUS the profile names. Which NTSTATUS Windows' LSA gives for
which account state is not in MS-CSSP; the profiles name the code MS-ERREF defines for it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rdprobe.protocol.credssp import TSRequest
from rdprobe.protocol.credssp_auth import (
    client_pub_key_auth,
    expected_server_pub_key_auth,
    parse_ts_credentials,
    subject_public_key,
    uses_nonce,
)
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.ntlm import datetime_to_filetime
from rdprobe.protocol.ntstatus import NtStatus

#: A profile account: (domain, user, password). Throwaway values for the emulator only.
Account = tuple[str, str, str]
EMULATOR_ACCOUNTS: tuple[Account, ...] = (("", "rdprobe", "Emulator-Pass-1"),)


@dataclass(frozen=True)
class CredSspPolicy:
    """How the emulated server answers a CredSSP logon."""

    version: int = 6  #: its TSRequest version (2-6)
    accounts: tuple[Account, ...] = EMULATOR_ACCOUNTS
    #: answer every AUTHENTICATE with this errorCode (an account state, spec-built)
    error_code: int | None = None
    #: on a wrong password: "error" (errorCode STATUS_LOGON_FAILURE) or "close" (as FreeRDP)
    wrong_password: str = "error"
    #: answer with a pubKeyAuth over another key: what a man in the middle would send
    tamper_pub_key: bool = False
    #: Early User Authorization Result for HYBRID_EX (MS-RDPBCGR 2.2.10.2): 0 or 5
    authorization: int = 0


@functools.cache
def _user_file(accounts: tuple[Account, ...]) -> str:
    """pyspnego's acceptor reads accounts from the file NTLM_USER_FILE names."""
    folder = tempfile.mkdtemp(prefix="rdprobe-emu-ntlm-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "users")
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(f"{d}:{u}:{p}\n" for d, u, p in accounts)
    return path


@contextlib.contextmanager
def _accounts(accounts: tuple[Account, ...]) -> Iterator[None]:
    """NTLM_USER_FILE for one synchronous pyspnego call (no await inside)."""
    old = os.environ.get("NTLM_USER_FILE")
    os.environ["NTLM_USER_FILE"] = _user_file(accounts)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NTLM_USER_FILE", None)
        else:
            os.environ["NTLM_USER_FILE"] = old


class CredSspAcceptor(Protocol):
    """What the emulator's TLS loop feeds the client's TSRequests to (MS-CSSP 3.1.5)."""

    done: bool

    def receive(self, raw: bytes) -> tuple[bytes, bool]: ...


#: An AV pair header for MsvAvTimestamp (AvId 7, AvLen 8; MS-NLMP 2.2.2.1).
_AV_TIMESTAMP = b"\x07\x00\x08\x00"


def with_timestamp(tsrequest: bytes, moment: datetime) -> bytes:
    """A recorded TSRequest whose NTLM CHALLENGE's MsvAvTimestamp says ``moment`` (a live
    server sends its own clock there); the bytes unchanged when it has none. Same length, so
    every DER length stays right."""
    start = tsrequest.find(b"NTLMSSP\x00")
    at = tsrequest.find(_AV_TIMESTAMP, start) if start >= 0 else -1
    if at < 0 or at + 12 > len(tsrequest):
        return tsrequest
    stamp = datetime_to_filetime(moment)
    return tsrequest[: at + 4] + stamp + tsrequest[at + 12 :]


class RecordedChallenge:
    """CredSSP as far as a probe without credentials takes it: a recorded Windows TSRequest
    carrying the NTLM CHALLENGE, its timestamp set to now, answers the client's first TSRequest
    (its NEGOTIATE), and the connection closes on anything after it (no logon is emulated
    here: see CredSspSession)."""

    def __init__(self, challenge: bytes) -> None:
        self.challenge = with_timestamp(challenge, datetime.now(UTC))
        self.done = False
        self._answered = False

    def receive(self, raw: bytes) -> tuple[bytes, bool]:
        if self._answered:
            return b"", True
        try:
            request = TSRequest.parse(raw)
        except ProtocolError:
            return b"", True
        if not request.nego_tokens:
            return b"", True
        self._answered = True
        return self.challenge, False


class CredSspSession:
    """One connection's CredSSP acceptor: TSRequest bytes in, (reply bytes, close?) out."""

    def __init__(self, policy: CredSspPolicy, certificate_der: bytes, hybrid_ex: bool) -> None:
        import spnego

        self.policy = policy
        self.public_key = subject_public_key(certificate_der)
        self.hybrid_ex = hybrid_ex
        self.done = False
        self.received_user: str | None = None
        with _accounts(policy.accounts):
            self._ntlm: Any = spnego.server(
                service="TERMSRV", protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm
            )
        self._step = 0

    def _answer(self, **fields: Any) -> bytes:
        return TSRequest(self.policy.version, **fields).build()

    def receive(self, raw: bytes) -> tuple[bytes, bool]:
        """Answer one client TSRequest; the flag says: close the connection after sending."""
        try:
            request = TSRequest.parse(raw)
        except ProtocolError:
            return b"", True
        self._step += 1
        try:
            with _accounts(self.policy.accounts):
                if self._step == 1:
                    return self._challenge(request)
                if self._step == 2:
                    return self._authenticate(request)
                return self._credentials(request)
        except ProtocolError:
            return b"", True

    def _challenge(self, request: TSRequest) -> tuple[bytes, bool]:
        if not request.nego_tokens:
            return b"", True
        try:
            challenge = self._ntlm.step(request.nego_tokens[0])
        except Exception:
            return self._answer(error_code=NtStatus.STATUS_INVALID_PARAMETER), True
        return self._answer(nego_tokens=(challenge,)), False

    def _authenticate(self, request: TSRequest) -> tuple[bytes, bool]:
        if self.policy.error_code is not None:
            return self._answer(error_code=self.policy.error_code), True
        if not request.nego_tokens or request.pub_key_auth is None:
            return self._answer(error_code=NtStatus.STATUS_INVALID_PARAMETER), True
        try:
            self._ntlm.step(request.nego_tokens[0])
        except Exception:  # a wrong password or an unknown user
            if self.policy.wrong_password == "close":
                return b"", True
            return self._answer(error_code=NtStatus.STATUS_LOGON_FAILURE), True
        version = min(request.version, self.policy.version)
        nonce = request.client_nonce if uses_nonce(version) else None
        try:
            got = self._ntlm.unwrap(request.pub_key_auth).data
            if got != client_pub_key_auth(self.public_key, version, nonce):
                return self._answer(error_code=NtStatus.STATUS_BAD_BINDINGS), True
        except Exception:  # a pubKeyAuth that does not unseal
            return self._answer(error_code=NtStatus.STATUS_BAD_BINDINGS), True
        key = self.public_key
        if self.policy.tamper_pub_key:
            key = bytes([key[0] ^ 0x55]) + key[1:]
        answer = self._ntlm.wrap(expected_server_pub_key_auth(key, version, nonce)).data
        return self._answer(pub_key_auth=answer), False

    def _credentials(self, request: TSRequest) -> tuple[bytes, bool]:
        if request.auth_info is None:
            return b"", True
        try:
            cred_type, creds = parse_ts_credentials(self._ntlm.unwrap(request.auth_info).data)
        except Exception:  # ProtocolError, or a message that does not unseal
            return b"", True
        if cred_type != 1 or creds is None:
            return b"", True
        self.received_user = creds.user
        self.done = True
        if self.hybrid_ex:
            return self.policy.authorization.to_bytes(4, "little"), self.policy.authorization != 0
        return b"", False
