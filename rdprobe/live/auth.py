"""An NLA logon with real credentials: CredSSP (MS-CSSP 3.1.5) over rdprobe's own TLS.

Why pyspnego's NTLM context and not its CredSSP one (measured against FreeRDP's shadow server,
pyspnego 0.12.4): `protocol="credssp"` runs its own TLS inside its tokens and wraps NTLM in
SPNEGO; fed whole TLS records it got through the handshake, then FreeRDP refused its
SPNEGO-wrapped NEGOTIATE (a TSRequest errorCode), and its unwrap() loops forever on a TLS read
that returns b"" (end of stream), a CPU loop no asyncio deadline interrupts. `protocol="ntlm"`
gives the NTLM context alone (NTLMv2, MIC, channel bindings, sealing): it only computes, so
rdprobe keeps the socket, the TLS, the TSRequest framing and every deadline, and feeds pyspnego
only a CHALLENGE its own parser accepted.

Order of the exchange (client side):
  1. TSRequest{negoTokens: NTLM NEGOTIATE}           -> TSRequest{negoTokens: CHALLENGE}
  2. TSRequest{AUTHENTICATE, pubKeyAuth, clientNonce} -> TSRequest{pubKeyAuth} | errorCode | close
  3. verify the server's pubKeyAuth against the TLS key; only then
     TSRequest{authInfo: sealed TSCredentials}
A mismatch in 3 is reported as a possible man in the middle and no credential is sent.
Whatever the server does becomes an AuthResult; no library text reaches it (it may hold inputs).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from rdprobe.analysis.auth_facts import ACCEPTED, ERROR, MITM, REJECTED, REJECTED_NO_REASON
from rdprobe.live.credentials import Credentials
from rdprobe.live.nla import read_tsrequest
from rdprobe.live.timing import Deadline
from rdprobe.protocol import ntlm
from rdprobe.protocol.credssp import CREDSSP_VERSION, TSRequest
from rdprobe.protocol.credssp_auth import (
    CLIENT_NONCE_LENGTH,
    PasswordCreds,
    build_ts_credentials,
    client_pub_key_auth,
    expected_server_pub_key_auth,
    subject_public_key,
    uses_nonce,
)
from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.ntstatus import describe, status_name

MIN_TSREQUEST_VERSION = 2


@dataclass(frozen=True)
class AuthResult:
    """JSON-ready facts of one CredSSP logon attempt; never holds the password."""

    outcome: str
    user: str
    tsrequest_version: int | None = None
    error_code: int | None = None
    error: str | None = None
    stage: str | None = None  #: the step where the exchange ended
    server_computer: str | None = None  #: NetBIOS computer name from the CHALLENGE
    server_domain: str | None = None  #: NetBIOS domain name from the CHALLENGE
    channel_bindings: str | None = None  #: "tls-server-end-point" when sent
    notes: tuple[str, ...] = field(default=())

    def fields(self) -> dict[str, Any]:
        """The AuthFacts fields this exchange established."""
        return dict(self.__dict__)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "user": self.user,
            "tsrequest_version": self.tsrequest_version,
            "error_code": None if self.error_code is None else f"0x{self.error_code:08x}",
            "status": None if self.error_code is None else status_name(self.error_code),
            "error": self.error,
            "stage": self.stage,
            "server_computer": self.server_computer,
            "server_domain": self.server_domain,
            "channel_bindings": self.channel_bindings,
            "notes": list(self.notes),
        }


class _Stop(Exception):
    """Ends the exchange with a result (internal)."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("outcome"))
        self.result = result


def channel_binding_data(certificate_der: bytes) -> bytes:
    """RFC 5929 tls-server-end-point application data: the certificate hashed with its
    signature hash, SHA-256 for MD5/SHA-1 or when unknown (MS-NLMP 3.1.5.1.2 carries its MD5)."""
    algorithm = "sha256"
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(certificate_der)
        name = cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else ""
        if name in ("sha384", "sha512"):
            algorithm = name
    except Exception:  # a certificate cryptography refuses still binds with SHA-256
        pass
    return b"tls-server-end-point:" + hashlib.new(algorithm, certificate_der).digest()


def _ntlm_client(creds: Credentials, hostname: str, bindings: bytes) -> Any:
    """pyspnego's pure-Python NTLM initiator (no GSSAPI/SSPI), with the TLS channel binding."""
    import spnego
    from spnego.channel_bindings import GssChannelBindings

    user = f"{creds.domain}\\{creds.user}" if creds.domain else creds.user
    return spnego.client(
        user,
        creds.password(),
        hostname=hostname,
        service="TERMSRV",
        protocol="ntlm",
        options=spnego.NegotiateOptions.use_ntlm,
        channel_bindings=GssChannelBindings(application_data=bindings),
    )


async def credssp_logon(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    creds: Credentials,
    hostname: str,
    certificate_der: bytes,
    timeout: float,
    deadline: Deadline | None = None,
) -> AuthResult:
    """Run the CredSSP client on a stream already in TLS; the caller closes the writer.

    Each send and each server answer gets ``timeout`` seconds, cut by ``deadline`` (the
    target's one absolute deadline) when given."""
    facts: dict[str, Any] = {"user": creds.display, "stage": "start"}
    limit = _Limit(timeout, deadline)
    try:
        await _exchange(reader, writer, creds, hostname, certificate_der, limit, facts)
    except _Stop as stop:
        facts.update(stop.result)
    except TimeoutError:
        facts.update(outcome=ERROR, error=f"no answer from the server at {facts['stage']}")
    except asyncio.IncompleteReadError as exc:
        facts.update(_closed(facts["stage"], len(exc.partial)))
    except ProtocolError as exc:
        facts.update(outcome=ERROR, error=f"server reply is not a TSRequest: {exc.reason}")
    except OSError as exc:  # resets and TLS errors; their text holds no input of ours
        facts.update(_closed(facts["stage"], 0, type(exc).__name__))
    return AuthResult(**facts)


def _closed(stage: str, partial: int, how: str = "closed") -> dict[str, Any]:
    after = f" after {partial} bytes" if partial else ""
    if stage == "authenticate":
        return {
            "outcome": REJECTED_NO_REASON,
            "error": f"the server ended the connection ({how}{after}) after the AUTHENTICATE "
            "message without an errorCode: rejected, no reason given",
        }
    return {"outcome": ERROR, "error": f"the server ended the connection ({how}{after}) at {stage}"}


class _Limit:
    """The time one network step may take: its own limit, cut by the target's deadline."""

    def __init__(self, step: float, deadline: Deadline | None) -> None:
        self.step, self.deadline = step, deadline

    def __call__(self) -> float:
        left = self.step if self.deadline is None else self.deadline.limit(self.step)
        if left <= 0:
            raise TimeoutError
        return left


async def _send(writer: asyncio.StreamWriter, request: TSRequest, limit: _Limit) -> None:
    writer.write(request.build())
    await asyncio.wait_for(writer.drain(), limit())


async def _receive(reader: asyncio.StreamReader, limit: _Limit) -> TSRequest:
    request = TSRequest.parse(await read_tsrequest(reader, limit()))
    if request.error_code is not None and request.error_code != 0:
        raise _Stop(
            {
                "outcome": REJECTED,
                "error_code": request.error_code,
                "tsrequest_version": request.version,
                "error": f"the server answered with errorCode {describe(request.error_code)}",
            }
        )
    return request


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    creds: Credentials,
    hostname: str,
    certificate_der: bytes,
    limit: _Limit,
    facts: dict[str, Any],
) -> None:
    try:
        public_key = subject_public_key(certificate_der)
    except ProtocolError as exc:
        raise _Stop(
            {"outcome": ERROR, "error": f"TLS certificate unreadable: {exc.reason}"}
        ) from None
    try:
        context = _ntlm_client(creds, hostname, channel_binding_data(certificate_der))
        negotiate = context.step()
    except Exception:  # library text may hold the inputs: never pass it on
        raise _Stop({"outcome": ERROR, "error": "the local NTLM client could not start"}) from None
    facts["channel_bindings"] = "tls-server-end-point"

    facts["stage"] = "negotiate"
    await _send(writer, TSRequest(CREDSSP_VERSION, (negotiate,)), limit)
    reply = await _receive(reader, limit)
    facts["tsrequest_version"] = reply.version
    challenge = _challenge(reply, facts)
    if creds.domain and creds.domain.upper() != str(facts.get("server_computer") or "").upper():
        facts["notes"] = (
            f"{creds.domain} is not the server's own name: a domain account was tried over "
            "NTLM (rdprobe does not do Kerberos; a client that does may behave differently)",
        )
    version = min(reply.version, CREDSSP_VERSION)
    if version < MIN_TSREQUEST_VERSION:
        raise _Stop({"outcome": ERROR, "error": f"TSRequest version {reply.version} is below 2"})
    try:
        authenticate = context.step(challenge)
    except Exception:
        raise _Stop(
            {"outcome": ERROR, "error": "the NTLM client refused the server's CHALLENGE"}
        ) from None
    nonce = os.urandom(CLIENT_NONCE_LENGTH) if uses_nonce(version) else None
    sealed = _seal(context, client_pub_key_auth(public_key, version, nonce))

    facts["stage"] = "authenticate"
    await _send(
        writer,
        TSRequest(CREDSSP_VERSION, (authenticate,), pub_key_auth=sealed, client_nonce=nonce),
        limit,
    )
    answer = await _receive(reader, limit)
    facts["stage"] = "pubkeyauth"
    if answer.pub_key_auth is None:
        raise _Stop({"outcome": ERROR, "error": "the server's answer carries no pubKeyAuth"})
    try:
        unsealed = context.unwrap(answer.pub_key_auth).data
    except Exception:
        unsealed = None
    if unsealed != expected_server_pub_key_auth(public_key, version, nonce):
        raise _Stop(
            {
                "outcome": MITM,
                "error": "the server's pubKeyAuth does not prove the TLS key: the TLS "
                "connection may end at a man in the middle; no credentials were sent",
            }
        )

    facts["stage"] = "credentials"
    pw = PasswordCreds(creds.domain, creds.user, creds.password())
    blob = build_ts_credentials(pw)
    del pw
    sealed_creds = _seal(context, blob)
    del blob, context
    await _send(writer, TSRequest(CREDSSP_VERSION, auth_info=sealed_creds), limit)
    facts.update(outcome=ACCEPTED, stage="credentials sent")


def _challenge(reply: TSRequest, facts: dict[str, Any]) -> bytes:
    """The NTLM CHALLENGE, checked by rdprobe's own parser before pyspnego sees it."""
    if not reply.nego_tokens:
        raise _Stop({"outcome": ERROR, "error": "the server's TSRequest carries no negoToken"})
    token = reply.nego_tokens[0]
    try:
        parsed = ntlm.parse_challenge(token)
    except ProtocolError as exc:
        raise _Stop({"outcome": ERROR, "error": f"bad NTLM CHALLENGE: {exc.reason}"}) from None
    facts["server_computer"] = parsed.nb_computer
    facts["server_domain"] = parsed.nb_domain
    return token


def _seal(context: Any, data: bytes) -> bytes:
    try:
        return bytes(context.wrap(data).data)
    except Exception:
        raise _Stop(
            {"outcome": ERROR, "error": "the NTLM client could not seal a message"}
        ) from None
