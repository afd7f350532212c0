"""MCS Connect-Initial probe over an open stream, and the encryption-method matrix.

After a Connection Confirm that selected PROTOCOL_RDP (or an 11-byte legacy confirm), or after
TLS when SSL was selected: send X.224 DT + MCS Connect-Initial (GCC CS_CORE, CS_SECURITY, CS_NET),
read one TPKT (at most tpkt.MAX_PDU), parse, send Disconnect-Provider-Ultimatum, close.
MS-RDPBCGR 1.3.1.1 (connection sequence), 2.2.1.3, 2.2.1.4, 5.3.2 (encryption levels).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from rdprobe.analysis.encryption_level import MethodOutcome
from rdprobe.live.frames import read_frame
from rdprobe.live.timing import close_writer, drain_within
from rdprobe.protocol import gcc, gcc_client, gcc_server, mcs, tpkt, x224
from rdprobe.protocol.errors import ProtocolError, one_line

OpenStream = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter, int]]]

#: One connection per method, offered alone (the order is the report order).
MATRIX_METHODS: dict[str, int] = {
    "40BIT": gcc.EncryptionMethod.ENCRYPTION_METHOD_40BIT,
    "56BIT": gcc.EncryptionMethod.ENCRYPTION_METHOD_56BIT,
    "128BIT": gcc.EncryptionMethod.ENCRYPTION_METHOD_128BIT,
    "FIPS": gcc.EncryptionMethod.ENCRYPTION_METHOD_FIPS,
}
ALL_METHODS = 0x1B  # 40 | 128 | 56 | FIPS, what mstsc offers


@dataclass(frozen=True)
class McsResult:
    """What one Connect Initial got; the stage turns it into McsFacts (and its JSON form)."""

    selected_protocol: int
    encryption_methods: int  # what was offered
    server_data: gcc_server.ServerData | None = None
    connect_response: mcs.ConnectResponse | None = None
    ultimatum: mcs.DisconnectProviderUltimatum | None = None
    error: str | None = None
    raw_hex: str = ""
    elapsed_ms: float = 0.0


async def read_tpkt(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """One whole TPKT PDU (ProtocolError if not TPKT or larger than tpkt.MAX_PDU)."""
    return await read_frame(reader, tpkt.frame_length, timeout)


@functools.lru_cache(maxsize=32)
def connect_initial(selected_protocol: int, encryption_methods: int) -> bytes:
    """X.224 DT + MCS Connect-Initial as rdprobe sends it; the same bytes every time, so built
    once per (protocol, methods) rather than once per connection of a sweep."""
    return x224.build_data(
        mcs.build_connect_initial(
            gcc_client.build_client_data(
                selected_protocol=selected_protocol, encryption_methods=encryption_methods
            )
        )
    )


_DISCONNECT = x224.build_data(mcs.build_disconnect_provider_ultimatum())


def _interpret(result: McsResult, pdu: bytes) -> McsResult:
    fields = dict(result.__dict__, raw_hex=pdu.hex())
    try:
        reply = mcs.parse_server_pdu(x224.parse_data(pdu))
        if isinstance(reply, mcs.DisconnectProviderUltimatum):
            fields.update(
                ultimatum=reply, error=f"disconnect provider ultimatum ({reply.reason_name})"
            )
        elif reply.result != mcs.Result.RT_SUCCESSFUL:
            fields.update(connect_response=reply, error=f"MCS result {reply.result_name}")
        else:
            data = gcc_server.parse_conference_create_response(reply.user_data)
            fields.update(connect_response=reply, server_data=data)
    except ProtocolError as exc:
        fields.update(error=f"malformed reply: {exc}")
    return McsResult(**fields)


async def mcs_probe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    selected_protocol: int,
    encryption_methods: int = ALL_METHODS,
    timeout: float = 5.0,
) -> McsResult:
    """Send Connect-Initial, read and parse the reply, disconnect, close. Never raises."""
    start = time.monotonic()
    result = McsResult(selected_protocol, encryption_methods)
    try:
        writer.write(connect_initial(selected_protocol, encryption_methods))
        await drain_within(writer, timeout)
        pdu = await read_tpkt(reader, timeout)
        result = _interpret(result, pdu)
        try:
            writer.write(_DISCONNECT)  # a few bytes: the socket buffer takes them, no drain
        except OSError:
            pass
    except TimeoutError:
        result = McsResult(selected_protocol, encryption_methods, error="timeout: no MCS reply")
    except asyncio.IncompleteReadError as exc:
        error = (
            "connection closed before any MCS reply"
            if not exc.partial
            else (f"connection closed after {len(exc.partial)} bytes of the MCS reply")
        )
        result = McsResult(selected_protocol, encryption_methods, error=error,
                           raw_hex=exc.partial.hex())  # fmt: skip
    except ProtocolError as exc:
        result = McsResult(selected_protocol, encryption_methods, error=f"malformed reply: {exc}")
    except OSError as exc:
        result = McsResult(selected_protocol, encryption_methods, error=f"socket error: {exc}")
    finally:
        await close_writer(writer)
    elapsed = round((time.monotonic() - start) * 1000, 2)
    return McsResult(**dict(result.__dict__, elapsed_ms=elapsed))


# --- encryption matrix ----------------------------------------------------------------------


def summarize(offered: str, result: McsResult) -> MethodOutcome:
    sec = result.server_data.security if result.server_data else None
    if sec is None:
        error = result.error or "no security data in the MCS Connect Response"
        return MethodOutcome(offered, False, False, error=error)
    return MethodOutcome(offered, True, sec.method_name == offered, sec.method_name, sec.level_name)


async def _one(open_stream: OpenStream, name: str, method: int, timeout: float) -> MethodOutcome:
    try:
        async with asyncio.timeout(timeout):  # no task per probe, unlike wait_for
            reader, writer, selected = await open_stream()
    except Exception as exc:  # whatever the lead's opener raises is a per-method failure
        return MethodOutcome(name, False, False, error=f"could not connect: {one_line(exc)}")
    result = await mcs_probe(
        reader, writer, selected_protocol=selected, encryption_methods=method, timeout=timeout
    )
    return summarize(name, result)


#: The method not offered alone while the first probe (every method) runs: the one servers
#: choose most (High and Client Compatible levels with a 128-bit client, xrdp's default); when the
#: first probe chose it, that answer is its answer alone too (``answer_alone``), else it is asked.
EXPECTED_METHOD = "128BIT"


def answer_alone(first: McsResult) -> MethodOutcome | None:
    """The outcome of offering alone the method the server chose from all of them: the server
    chooses among the methods offered (MS-RDPBCGR 5.3.2), so the chosen one offered alone is
    chosen again. None when the first probe got no security data to tell."""
    sec = first.server_data.security if first.server_data else None
    return None if sec is None else summarize(sec.method_name, first)


async def encryption_matrix(
    open_stream: OpenStream, *, timeout: float = 5.0, names: tuple[str, ...] = tuple(MATRIX_METHODS)
) -> dict[str, MethodOutcome]:
    """Offer each method of ``names`` (40BIT, 56BIT, 128BIT and FIPS) alone, one fresh
    connection each, concurrently."""
    outcomes = await asyncio.gather(
        *(_one(open_stream, name, MATRIX_METHODS[name], timeout) for name in names)
    )
    return {o.offered: o for o in outcomes}
