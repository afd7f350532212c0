"""Hostile RDP listeners on loopback that replay real server bytes with mutations.

One listener is one target: it answers the X.224 Connection Request with a recorded Windows
Connection Confirm (its selectedProtocol set to what the behaviour needs), then misbehaves at
one stage: X.224, TLS records, the TLS certificate, CredSSP or MCS. Each runs in its own thread
with its own event loop (so the prober's loop is not the server's) and records, per target, the
wall time from the first connection accepted to the last one closed by the prober.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fuzzkit import seeds
from fuzzkit.mutate import mutate
from rdprobe.protocol import tpkt, x224
from rdprobe.protocol.errors import ProtocolError

SSL, HYBRID = 1, 2
#: How long a listener holds a connection the prober does not close (far past any deadline).
HOLD_S = 60.0

BEHAVIOURS = (
    "x224-mutated",  # a mutated recorded Connection Confirm
    "x224-drip",  # the Connection Confirm one byte at a time, slower than --timeout
    "tls-stall",  # SSL selected, then nothing
    "tls-drip",  # SSL selected, a recorded server flight one byte at a time
    "tls-mutated",  # SSL selected, a mutated recorded server flight
    "tls-bad-cert",  # real TLS with a certificate OpenSSL serves and cryptography refuses
    "credssp-stall",  # HYBRID, real TLS, then no TSRequest
    "credssp-mutated",  # HYBRID, real TLS, a mutated recorded NTLM CHALLENGE TSRequest
    "mcs-mutated",  # RDP selected, a mutated recorded MCS Connect Response
    "mcs-drip",  # RDP selected, the recorded Connect Response one byte at a time
)


def _confirm(selected: int) -> bytes:
    """A recorded 19-byte Windows Connection Confirm with selectedProtocol set."""
    real = next(p for p in seeds.pdus("x224_cc") if len(p) == 19)
    return real[:15] + struct.pack("<I", selected)


def _certificates(workdir: Path) -> dict[str, tuple[Path, Path]]:
    """{"good": (cert, key), "bad": (cert, key)}: the bad one has X.509 version field 3."""
    import sys

    sys.path.insert(0, str(seeds.ROOT / "tests"))
    from certgen import self_signed
    from cryptography.hazmat.primitives import serialization

    key, cert = self_signed("fuzz.rdprobe.test")
    der = cert.public_bytes(serialization.Encoding.DER)
    at = der.index(bytes.fromhex("a003020102")) + 4  # [0] EXPLICIT INTEGER 2 (v3)
    bad = der[:at] + b"\x03" + der[at + 1 :]
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out = {}
    for name, blob in (("good", der), ("bad", bad)):
        cert_path, key_path = workdir / f"{name}.pem", workdir / f"{name}.key"
        cert_path.write_text(ssl.DER_cert_to_PEM_cert(blob))
        key_path.write_bytes(key_pem)
        out[name] = (cert_path, key_path)
    return out


@dataclass
class Listener:
    behaviour: str
    host: str
    port: int = 0
    seed: int = 0
    drip_s: float = 0.05
    first_accept: float | None = None
    last_close: float | None = None
    connections: int = 0
    open_now: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def wall_s(self) -> float | None:
        if self.first_accept is None or self.last_close is None:
            return None
        return self.last_close - self.first_accept


class HostileServers:
    """Start with ``with HostileServers([...]) as servers:``; listeners bind at once."""

    def __init__(self, listeners: list[Listener]) -> None:
        self.listeners = listeners
        self._workdir = Path(tempfile.mkdtemp(prefix="rdprobe-fuzz-"))
        self._certs = _certificates(self._workdir)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    def __enter__(self) -> HostileServers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def idle(self) -> bool:
        return all(item.open_now == 0 for item in self.listeners)

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.05)
        return self.idle()

    async def _start(self) -> None:
        for item in self.listeners:
            item.rng = random.Random(item.seed)
            server = await asyncio.start_server(
                lambda r, w, item=item: self._serve(item, r, w), item.host, item.port
            )
            item.port = server.sockets[0].getsockname()[1]
            self._servers.append(server)

    def _context(self, which: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(*self._certs[which])
        return context

    async def _serve(self, item: Listener, reader, writer) -> None:
        now = time.monotonic()
        item.first_accept = item.first_accept or now
        item.connections += 1
        item.open_now += 1
        try:
            async with asyncio.timeout(HOLD_S):
                await self._behave(item, reader, writer)
                await _hold(reader)
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except ProtocolError:  # no X.224 request (the prober tries TLS straight away): close
            pass
        except asyncio.CancelledError:  # the servers are stopping
            pass
        finally:
            item.open_now -= 1
            item.last_close = time.monotonic()
            writer.transport.abort()

    async def _behave(self, item: Listener, reader, writer) -> None:
        kind = item.behaviour
        head = await reader.readexactly(tpkt.HEADER_LEN)
        cr = head + await reader.readexactly(tpkt.frame_length(head) - tpkt.HEADER_LEN)
        neg = x224.parse_request(cr).negotiation
        requested = neg.requested if neg is not None else 0
        if kind.startswith("x224"):
            real = _confirm(requested & HYBRID or requested & SSL)
            if kind == "x224-drip":
                await _drip(writer, real, item.drip_s * 10)
            else:
                writer.write(mutate(item.rng, real))
            return
        if kind.startswith("mcs"):
            writer.write(_confirm(0))
            await _read_tpkt(reader)  # the MCS Connect-Initial
            real = item.rng.choice(seeds.pdus("mcs_cr"))
            if kind == "mcs-drip":
                await _drip(writer, real, item.drip_s)
            else:
                writer.write(mutate(item.rng, real))
            return
        wants = HYBRID if kind.startswith("credssp") else SSL
        if not requested & wants:
            writer.write(_confirm(requested & SSL))  # what it can; the stage asks again
            if not requested & (SSL | HYBRID):
                return
        else:
            writer.write(_confirm(wants))
        await writer.drain()
        if kind == "tls-stall":
            return
        if kind in ("tls-drip", "tls-mutated"):
            await reader.read(4096)  # the ClientHello
            flight = item.rng.choice(seeds.pdus("tls_server_hello_certificate_done_record"))
            if kind == "tls-drip":
                await _drip(writer, flight, item.drip_s)
            else:
                writer.write(mutate(item.rng, flight))
            return
        which = "bad" if kind == "tls-bad-cert" else "good"
        await writer.start_tls(self._context(which))
        if kind == "credssp-stall":
            return
        if kind == "credssp-mutated":
            await reader.read(4096)  # the TSRequest with NTLM NEGOTIATE
            real = item.rng.choice(seeds.pdus("credssp_tsrequest_ntlm_challenge"))
            writer.write(mutate(item.rng, real))


async def _read_tpkt(reader) -> bytes:
    head = await reader.readexactly(tpkt.HEADER_LEN)
    return head + await reader.readexactly(tpkt.frame_length(head) - tpkt.HEADER_LEN)


async def _drip(writer, data: bytes, every: float) -> None:
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(every)


async def _hold(reader) -> None:
    """Read and drop until the prober closes."""
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(4096):
            pass
