"""Pinned-version TLS probes without a handshake: one ClientHello, the server's clear answer.

Whether a server speaks TLS version V shows in its first reply to a ClientHello offering only V
(RFC 5246 §7.4.1.2-§7.4.1.3, RFC 8446 §4.1.2-§4.1.4): a ServerHello choosing V, or an alert /
a close. Nothing after the ServerHello is needed, so no key exchange, certificate check or local
TLS library takes part: a version the local OpenSSL refuses to speak is probed all the same.
Sans-IO: :class:`PinnedAnswer` is fed the server's bytes and says when it knows.
"""

from __future__ import annotations

from rdprobe.protocol.errors import ProtocolError
from rdprobe.protocol.tlsflight import FlightReader
from rdprobe.protocol.tlsrec import build_client_hello, version_name

__all__ = ["ACCEPTED", "PINNED_VERSIONS", "REFUSED", "PinnedAnswer", "pinned_hello"]

ACCEPTED, REFUSED = "accepted", "refused"

#: TLS 1.0/1.1 suites Windows SCHANNEL (2003-2022) and OpenSSL servers answer at those versions,
#: legacy ones included so that an old server still answers: ECDHE/DHE/RSA with AES-CBC, 3DES,
#: RC4, DES (RFC 4492, RFC 5246 App. A.5, RFC 4346).
_LEGACY_SUITES = (
    0xC00A, 0xC009, 0xC014, 0xC013, 0x0039, 0x0033, 0x0038, 0x0032, 0x0035, 0x002F,
    0x0084, 0x0041, 0xC012, 0xC008, 0x0016, 0x0013, 0x000A, 0xC011, 0xC007, 0x0005,
    0x0004, 0x0015, 0x0009,
)  # fmt: skip
#: TLS 1.2 adds AEAD and SHA-256/384 suites (RFC 5288, RFC 5289, RFC 7905, RFC 5246).
_TLS12_SUITES = (
    0xC02C, 0xC030, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0x009F, 0x009E, 0xCCAA, 0xC024,
    0xC028, 0xC023, 0xC027, 0x006B, 0x0067, 0x009D, 0x009C, 0x003D, 0x003C,
    *_LEGACY_SUITES,
)  # fmt: skip
#: TLS 1.3 suites (RFC 8446 §B.4): a server without TLS 1.3 finds nothing to choose.
_TLS13_SUITES = (0x1301, 0x1302, 0x1303)

#: The pinned versions by name (as reported), their wire code and suites offered.
PINNED_VERSIONS: dict[str, tuple[int, tuple[int, ...]]] = {
    "TLSv1": (0x0301, _LEGACY_SUITES),
    "TLSv1.1": (0x0302, _LEGACY_SUITES),
    "TLSv1.2": (0x0303, _TLS12_SUITES),
    "TLSv1.3": (0x0304, _TLS13_SUITES),
}


def pinned_hello(name: str, *, server_name: str | None = None) -> bytes:
    """The ClientHello record offering only TLS version *name* (a key of PINNED_VERSIONS)."""
    code, suites = PINNED_VERSIONS[name]
    return build_client_hello(code, suites, server_name=server_name)


class PinnedAnswer:
    """The verdict on one pinned ClientHello from the server's bytes, fed as they arrive.

    ``feed`` and ``closed`` return "accepted" (a ServerHello choosing the version offered; for
    TLS 1.3 a HelloRetryRequest counts, RFC 8446 §4.1.4: it is a ServerHello selecting 1.3),
    "refused" (an alert, a ServerHello choosing an older version, or a close before any answer),
    "error: ..." (not TLS, a message that does not parse, a newer version than offered), or
    None from ``feed`` while the answer is still incomplete. Never raises.
    """

    __slots__ = ("_flight", "_offered", "verdict")

    def __init__(self, name: str, limit: int = 16 * 1024) -> None:
        self._offered = PINNED_VERSIONS[name][0]
        self._flight = FlightReader(limit=limit)
        self.verdict: str | None = None

    def feed(self, data: bytes) -> str | None:
        if self.verdict is None:
            flight = self._flight
            try:
                flight.feed(data)
            except ProtocolError as exc:
                self.verdict = f"error: not TLS: {exc.reason}"
                return self.verdict
            self.verdict = self._judge()
            if self.verdict is None and flight.complete:  # limit reached or encrypted bytes
                self.verdict = f"error: no ServerHello in the first {flight.fed} bytes"
        return self.verdict

    def closed(self) -> str:
        """The server closed (or reset) the connection."""
        if self.verdict is None:
            self._flight.finish()
            self.verdict = self._judge() or REFUSED  # a close is how SCHANNEL says no
        return self.verdict

    def _judge(self) -> str | None:
        flight = self._flight
        hello = flight.server_hello
        if hello is not None:
            chosen = hello.version
            if chosen == self._offered:
                return ACCEPTED
            if chosen < self._offered:
                return REFUSED
            return f"error: server chose {version_name(chosen)} to a {self._name()} hello"
        if flight.alert is not None:
            return REFUSED
        if flight.error is not None:
            return f"error: {flight.error}"
        return None

    def _name(self) -> str:
        return version_name(self._offered)
