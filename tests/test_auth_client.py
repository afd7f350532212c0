"""The CredSSP client (rdprobe.live.auth) against the emulator's NTLM acceptor over real TLS on
loopback, and against hostile servers: every TSRequest version 2-6, each verdict, no credential
after a pubKeyAuth mismatch, and no library text (which may hold inputs) in any result."""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest

from rdprobe.emulate.credssp_server import EMULATOR_ACCOUNTS, CredSspPolicy, CredSspSession
from rdprobe.emulate.server import _server_identity
from rdprobe.live import auth as live_auth
from rdprobe.live.auth import credssp_logon
from rdprobe.live.credentials import Credentials
from rdprobe.live.timing import Deadline
from rdprobe.live.tls import make_context
from rdprobe.protocol.credssp import TSRequest, tsrequest_length
from rdprobe.protocol.errors import NeedMoreData

_, USER, PASSWORD = EMULATOR_ACCOUNTS[0]


class Recorder:
    """A TLS server on 127.0.0.1 that answers each client TSRequest with ``answer(i, request)``
    (bytes to send, close?) and keeps every request it received."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[TSRequest] = []

    async def handle(self, reader, writer) -> None:
        buf = b""
        try:
            while True:
                try:
                    total = tsrequest_length(buf)
                    if len(buf) >= total:
                        request = TSRequest.parse(buf[:total])
                        buf = buf[total:]
                        self.requests.append(request)
                        data, close = self.answer(len(self.requests), request, buf)
                        if data:
                            writer.write(data)
                            await writer.drain()
                        if close:
                            break
                        continue
                except NeedMoreData:
                    pass
                chunk = await reader.read(4096)
                if not chunk:
                    break
                buf += chunk
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def logon(answer, password=PASSWORD, user=USER, timeout=3.0, deadline=None):
    server_ctx, cert_der = _server_identity()
    recorder = Recorder(answer)
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=make_context(), server_hostname=None
        )
        seen = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert seen == cert_der
        try:
            result = await credssp_logon(
                reader,
                writer,
                creds=Credentials(user, "", password),
                hostname="emu.test",
                certificate_der=cert_der,
                timeout=timeout,
                deadline=deadline,
            )
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return result, recorder.requests


def acceptor(policy: CredSspPolicy):
    session = CredSspSession(policy, _server_identity()[1], hybrid_ex=False)
    return lambda i, request, rest: session.receive(request.build())


@pytest.mark.parametrize("version", [2, 3, 4, 5, 6])
async def test_every_tsrequest_version_logs_on(version):
    result, requests = await logon(acceptor(CredSspPolicy(version=version)))
    assert result.outcome == live_auth.ACCEPTED, result
    assert result.tsrequest_version == version
    negotiate, authenticate, credentials = requests
    assert negotiate.nego_tokens[0].startswith(b"NTLMSSP\x00\x01")
    assert authenticate.nego_tokens[0].startswith(b"NTLMSSP\x00\x03")
    assert authenticate.pub_key_auth is not None
    assert (authenticate.client_nonce is not None) == (version >= 5)
    assert credentials.auth_info is not None and not credentials.nego_tokens
    for request in requests:
        assert PASSWORD.encode("utf-16-le") not in request.build()  # sealed, never plain


async def test_wrong_password_gets_the_servers_error_code():
    result, requests = await logon(acceptor(CredSspPolicy()), password="not-it")
    assert result.outcome == live_auth.REJECTED
    assert result.error_code == 0xC000006D
    assert result.to_dict()["status"] == "STATUS_LOGON_FAILURE"
    assert len(requests) == 2


async def test_close_without_error_code_is_rejected_no_reason():
    result, _ = await logon(acceptor(CredSspPolicy(wrong_password="close")), user="nobody")
    assert result.outcome == live_auth.REJECTED_NO_REASON and result.stage == "authenticate"
    assert "rejected, no reason given" in result.error


@pytest.mark.parametrize("version", [4, 6])
async def test_pubkey_mismatch_sends_no_credentials(version):
    result, requests = await logon(acceptor(CredSspPolicy(version=version, tamper_pub_key=True)))
    assert result.outcome == live_auth.MITM
    assert len(requests) == 2 and all(r.auth_info is None for r in requests)


async def test_a_pubkeyauth_that_does_not_unseal_is_a_mismatch_too():
    real = acceptor(CredSspPolicy())

    def answer(i, request, rest):
        data, close = real(i, request, rest)
        if i == 2:
            reply = TSRequest.parse(data)
            flipped = bytes([reply.pub_key_auth[0] ^ 1]) + reply.pub_key_auth[1:]
            data = TSRequest(reply.version, pub_key_auth=flipped).build()
        return data, close

    result, requests = await logon(answer)
    assert result.outcome == live_auth.MITM and len(requests) == 2


@pytest.mark.parametrize(
    ("answer", "expect"),
    [
        (lambda i, r, rest: (b"", True), "at negotiate"),  # closes at once
        (lambda i, r, rest: (b"HTTP/1.1 400 Bad\r\n\r\n", True), "not a TSRequest"),
        (lambda i, r, rest: (TSRequest(6).build(), False), "no negoToken"),
        (lambda i, r, rest: (TSRequest(6, (b"NTLMSSP\x00\x02junk",)).build(), False),
         "bad NTLM CHALLENGE"),
        (lambda i, r, rest: (TSRequest(1, (b"x",)).build(), False), "bad NTLM CHALLENGE"),
    ],
)  # fmt: skip
async def test_hostile_first_answers_become_errors(answer, expect):
    result, _ = await logon(answer)
    assert result.outcome == live_auth.ERROR and expect in result.error


async def test_a_silent_server_times_out_within_the_step_limit():
    started = time.monotonic()
    result, _ = await logon(lambda i, r, rest: (b"", False), timeout=0.5)
    assert result.outcome == live_auth.ERROR and "no answer" in result.error
    assert time.monotonic() - started < 3


async def test_the_targets_deadline_cuts_the_exchange():
    """A server answering each step slowly: the step limit alone would let it through."""

    def slow_acceptor():
        real = acceptor(CredSspPolicy())

        def slow(i, request, rest):
            time.sleep(0.4)  # blocks the loop: the client's clock runs on meanwhile
            return real(i, request, rest)

        return slow

    result, _ = await logon(slow_acceptor(), timeout=2.0)
    assert result.outcome == live_auth.ACCEPTED
    started = time.monotonic()
    result, _ = await logon(slow_acceptor(), timeout=2.0, deadline=Deadline(0.5))
    assert result.outcome == live_auth.ERROR and "no answer" in result.error
    assert time.monotonic() - started < 2.5


async def test_library_exception_text_never_reaches_the_result(monkeypatch):
    class Leaky:
        def __init__(self, *a, **k):
            pass

        def step(self, token=None):
            raise RuntimeError(f"pyspnego failed for password {PASSWORD}")

    monkeypatch.setattr(live_auth, "_ntlm_client", lambda creds, host, cb: Leaky())
    result, _ = await logon(acceptor(CredSspPolicy()))
    assert result.outcome == live_auth.ERROR
    assert PASSWORD not in repr(result) and PASSWORD not in str(result.to_dict())


async def test_a_challenge_pyspnego_refuses_is_reported_without_its_text(monkeypatch):
    import spnego

    real = spnego.client

    def client(*args, **kwargs):
        ctx = real(*args, **kwargs)

        class Wrapped:
            def step(self, token=None):
                if token is not None:
                    raise ValueError(f"bad token {token!r} for {args[1]}")
                return ctx.step()

        return Wrapped()

    monkeypatch.setattr(spnego, "client", client)
    result, _ = await logon(acceptor(CredSspPolicy()))
    assert result.error == "the NTLM client refused the server's CHALLENGE"
    assert PASSWORD not in str(result.to_dict())
