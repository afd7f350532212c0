"""The NLA probe: one CredSSP round trip that reveals the server's NTLM identity (MS-CSSP 3.1.5).

On a stream already upgraded to TLS, send TSRequest(version 6, negoTokens=[NTLM NEGOTIATE]) —
no user name, no domain, no credential — read the server's TSRequest and decode the NTLM
CHALLENGE inside. Then close. Whatever the server does becomes a result, never an exception.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rdprobe.live.frames import read_frame
from rdprobe.live.timing import close_writer, drain_within
from rdprobe.protocol import ntlm
from rdprobe.protocol.credssp import TSRequest, tsrequest_length
from rdprobe.protocol.errors import ProtocolError, one_line
from rdprobe.protocol.ntlm import NtlmChallenge

PROBE_TSREQUEST_VERSION = 6


@dataclass(frozen=True)
class NlaResult:
    challenge: NtlmChallenge | None
    tsrequest_version: int | None
    error: str | None
    error_code: int | None = None
    """TSRequest errorCode (NTSTATUS) when the server sent one."""


def negotiate_request() -> bytes:
    """The one message the probe sends (MS-CSSP 3.1.5: first TSRequest, NTLM NEGOTIATE)."""
    return TSRequest(PROBE_TSREQUEST_VERSION, (ntlm.build_negotiate(),)).build()


def interpret_reply(data: bytes) -> NlaResult:
    """Sans-IO: a server TSRequest's bytes to an NlaResult (shared with the pcap path)."""
    try:
        request = TSRequest.parse(data)
    except ProtocolError as exc:
        return NlaResult(None, None, f"server reply is not a TSRequest: {exc.reason}")
    if not request.nego_tokens:
        text = "server TSRequest carries no negoToken"
        if request.error_code is not None:
            text += f" (errorCode 0x{request.error_code:08x})"
        return NlaResult(None, request.version, text, request.error_code)
    token = request.nego_tokens[0]
    start = token.find(ntlm.SIGNATURE)  # tolerate a SPNEGO wrapper around the NTLM message
    if start < 0:
        return NlaResult(None, request.version, "negoToken holds no NTLMSSP message")
    try:
        challenge = ntlm.parse_challenge(token[start:])
    except ProtocolError as exc:
        return NlaResult(None, request.version, f"bad NTLM CHALLENGE: {exc.reason}")
    return NlaResult(challenge, request.version, None, request.error_code)


async def read_tsrequest(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """One DER-framed TSRequest, at most TSREQUEST_MAX_BYTES, within *timeout* overall.

    Raises ProtocolError (bad framing), asyncio.IncompleteReadError (closed) or TimeoutError.
    """
    return await read_frame(reader, tsrequest_length, timeout)


async def nla_probe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout: float
) -> NlaResult:
    """Send the NTLM NEGOTIATE in a TSRequest, decode the server's CHALLENGE, then close."""
    try:
        writer.write(negotiate_request())
        await drain_within(writer, timeout)
        reply = await read_tsrequest(reader, timeout)
    except TimeoutError:
        return NlaResult(None, None, "no TSRequest from the server before the timeout")
    except asyncio.IncompleteReadError as exc:
        got = f" after {len(exc.partial)} bytes" if exc.partial else ""
        return NlaResult(None, None, f"server closed the connection{got} instead of answering")
    except ProtocolError as exc:
        return NlaResult(None, None, f"server reply is not a TSRequest: {exc.reason}")
    except OSError as exc:  # includes ssl.SSLError and connection resets
        return NlaResult(None, None, f"connection error: {one_line(exc)}")
    finally:
        await close_writer(writer, timeout)
    return interpret_reply(reply)
