"""Raw capture records from pcap, pcapng and gzip-compressed files, streamed in constant memory.

Formats: libpcap savefile (both byte orders, microsecond magic ``a1b2c3d4`` and nanosecond magic
``a1b23c4d``; draft-ietf-opsawg-pcap) and pcapng (draft-ietf-opsawg-pcapng: Section Header,
Interface Description with ``if_tsresol`` / ``if_tsoffset``, Enhanced, Simple and obsolete Packet
blocks; every other block type is skipped). Either may be gzip-compressed (detected by magic).

Why our own ``struct`` reader and not scapy's ``RawPcapReader``: records are parsed out of 1 MiB
chunks with ``Struct.unpack_from``, one Python step per record instead of two ``read`` calls plus
scapy's per-record bookkeeping. Measured here on the same 1,000,004-packet file: this reader 1.44 M
records/s (pcap), 1.21 M/s (pcapng), 1.13 M/s (gzip pcap); scapy ``RawPcapReader`` 0.57 M/s and
``RawPcapNgReader`` 0.32 M/s. It also turns every malformed input into a warning or a
:class:`CaptureError`, where scapy raises ``Scapy_Exception`` / ``EOFError`` or drops a tail silently.

:class:`~rdprobe.capture.flows.FlowTable` reads classic pcap files without the record tuples:
:mod:`rdprobe.capture.fastpath` walks the chunks itself through :meth:`CaptureReader.pcap_start`,
:meth:`~CaptureReader.pcap_refill` and :meth:`~CaptureReader.pcap_corrupt`, which hold the
checks and messages both walks share.

Broken input never raises anything but :class:`CaptureError`, and only before the first record (not
a capture, empty, unreadable). After that, damage (truncated tail, absurd record length, bad block
length, corrupt gzip stream) stops the iteration and appends a one-line message to
:attr:`CaptureReader.warnings`: the records before it are the partial result.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["CaptureError", "CaptureReader", "Record", "open_capture"]

#: One record: (timestamp in seconds since the epoch, link type, captured bytes, original length).
Record = tuple[float, int, bytes, int]

CHUNK = 1 << 20
#: Largest captured length accepted for one record (libpcap's own bound is 256 KiB for most links).
MAX_RECORD = 1 << 18
#: Largest pcapng block accepted (records plus options).
MAX_BLOCK = 1 << 24

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_PB = 0x00000002
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006
GZIP_MAGIC = b"\x1f\x8b"
#: Packet times outside [0, MAX_TIME) (1970 .. year 9999) cannot be real: a damaged interface's
#: if_tsresol / if_tsoffset. Such packets get the previous packet's time and one warning.
MAX_TIME = 253402300800.0


class CaptureError(Exception):
    """A file that cannot be read as a capture at all; ``str()`` is a one-line message."""


class CaptureReader:
    """Iterate the records of a pcap / pcapng file (optionally gzip-compressed).

    ``source`` is a path or a binary file object opened for reading. Iterating yields
    :data:`Record` tuples; after (or during) iteration :attr:`warnings` holds one-line notes about
    damage found, :attr:`records` the number yielded and :attr:`snaplen_cut` how many records were
    shorter than their original length. Use as a context manager or call :meth:`close`.
    pcapng Simple Packet Blocks carry no timestamp: they get the previous packet's (0.0 if none).
    """

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, *, max_record: int = MAX_RECORD):
        self.warnings: list[str] = []
        self.records = 0
        self.snaplen_cut = 0
        self.max_record = max_record
        self.compression: str | None = None
        self.linktypes: list[int] = []
        self._owned: list[BinaryIO] = []
        name = getattr(source, "name", source)
        self.name = os.fspath(name) if isinstance(name, str | os.PathLike) else "<stream>"
        try:
            raw: BinaryIO
            if isinstance(source, str | os.PathLike):
                raw = open(source, "rb")
                self._owned.append(raw)
            else:
                raw = source
            head = _read_at_least(raw, 2)
            if head[:2] == GZIP_MAGIC:
                gz = gzip.GzipFile(fileobj=_Prefixed(head, raw), mode="rb")
                self._owned.append(gz)  # type: ignore[arg-type]
                self.compression = "gzip"
                raw = gz  # type: ignore[assignment]
                head = b""
            head = head + _read_at_least(raw, 28 - len(head))
        except (OSError, EOFError, zlib.error) as exc:
            self.close()
            raise CaptureError(f"{self.name}: cannot read: {_one_line(exc)}") from None
        self._file = raw
        self._head = head
        self._started = False
        if not head:
            self.close()
            raise CaptureError(f"{self.name}: empty file")
        magic_be = int.from_bytes(head[:4], "big") if len(head) >= 4 else -1
        magic_le = int.from_bytes(head[:4], "little") if len(head) >= 4 else -1
        if PCAP_MAGIC_US in (magic_be, magic_le) or PCAP_MAGIC_NS in (magic_be, magic_le):
            self.format = "pcap"
            if len(head) < 24:
                self.close()
                raise CaptureError(
                    f"{self.name}: pcap file header truncated ({len(head)} of 24 bytes)"
                )
            self._endian = ">" if magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS) else "<"
            self._scale = 1e-9 if PCAP_MAGIC_NS in (magic_be, magic_le) else 1e-6
            snaplen, network = struct.unpack_from(self._endian + "II", head, 16)
            self.snaplen = snaplen
            self.linktypes = [network & 0xFFFF]  # upper bits carry FCS information
        elif magic_be == PCAPNG_SHB:
            self.format = "pcapng"
            self.snaplen = 0
        else:
            self.close()
            raise CaptureError(
                f"{self.name}: not a pcap or pcapng file (starts with {head[:8].hex()})"
            )

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in reversed(self._owned):
            try:
                f.close()
            except (OSError, EOFError, zlib.error):
                pass
        self._owned.clear()

    def __iter__(self) -> Iterator[Record]:
        """The records, once: a reader streams its file and cannot rewind."""
        if self._started:
            raise CaptureError(f"{self.name}: already read (open the file again to re-read it)")
        self._started = True
        if self.format == "pcap":
            return self._iter_pcap()
        return self._iter_pcapng()

    # -- helpers -------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self.warnings.append(f"{self.name}: {message}")

    def _more(self, size: int = CHUNK) -> bytes:
        """Next chunk of the file; b"" at the end or when the (compressed) stream is damaged."""
        try:
            return self._file.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            self._warn(f"read stopped: {_one_line(exc)}; records after this point are lost")
            return b""

    def pcap_start(self) -> tuple[bytes, int, float, int, str]:
        """Classic pcap: claim the records for a caller that walks the chunks itself
        (:mod:`rdprobe.capture.fastpath`): (first chunk from offset 24, link type, seconds per
        timestamp unit, largest record length accepted, struct byte order). Raises CaptureError
        if the records were already read or this is no classic pcap file."""
        if self.format != "pcap":
            raise CaptureError(f"{self.name}: not a classic pcap file")
        if self._started:
            raise CaptureError(f"{self.name}: already read (open the file again to re-read it)")
        self._started = True
        return self._pcap_params()

    def _pcap_params(self) -> tuple[bytes, int, float, int, str]:
        self._limit = limit = max(self.max_record, min(self.snaplen, MAX_BLOCK))
        self._length = struct.Struct(self._endian + "I").unpack_from
        return self._head[24:], self.linktypes[0], self._scale, limit, self._endian

    def pcap_refill(self, buf: bytes, pos: int, base: int, count: int) -> tuple[bytes, int] | None:
        """The next buffer after ``buf`` was walked up to ``pos``, and its file offset; None at
        the end (a record cut short by it is warned about).

        A record cut at the end of ``buf`` is finished in a buffer of its own, and the next call
        (with ``pos`` at that buffer's end) gets a fresh chunk: joining the cut record to the
        next chunk would copy the whole chunk, i.e. the whole file once more.
        """
        rest = buf[pos:]
        if not rest:
            more = self._more()
            return (more, base + pos) if more else None
        length = self._length
        while True:
            if len(rest) >= 16:
                incl = length(rest, 8)[0]
                if incl > self._limit or len(rest) >= 16 + incl:
                    return rest, base + pos  # whole (or a corrupt header the caller reports)
                need = 16 + incl - len(rest)
            else:
                need = 16 - len(rest)
            more = self._more(need)
            if not more:
                self._warn(
                    f"file truncated: record {count + 1} at offset {base + pos} is cut "
                    f"short ({len(rest)} bytes left); {count} records read"
                )
                return None
            rest += more

    def pcap_corrupt(self, count: int, offset: int, incl: int, limit: int) -> None:
        """A record header whose captured length cannot be real: the reading stops here."""
        self._warn(
            f"record {count + 1} at offset {offset}: captured length {incl} "
            f"exceeds {limit}; corrupt record header, stopping"
        )

    def _iter_pcap(self) -> Iterator[Record]:
        buf, linktype, scale, limit, endian = self._pcap_params()
        unpack = struct.Struct(endian + "IIII").unpack_from
        base = 24  # file offset of buf[0]
        pos = 0
        n = len(buf)
        count = cut = 0
        try:
            while True:
                while pos + 16 <= n:
                    sec, frac, incl, orig = unpack(buf, pos)
                    if incl > limit:
                        self.pcap_corrupt(count, base + pos, incl, limit)
                        return
                    end = pos + 16 + incl
                    if end > n:
                        break
                    if incl < orig:
                        cut += 1
                    count += 1
                    self.records = count
                    yield (sec + frac * scale, linktype, buf[pos + 16 : end], orig)
                    pos = end
                refill = self.pcap_refill(buf, pos, base, count)
                if refill is None:
                    return
                buf, base = refill
                pos = 0
                n = len(buf)
        finally:
            self.records = count
            self.snaplen_cut = cut

    def _iter_pcapng(self) -> Iterator[Record]:
        buf = self._head
        base = pos = 0
        n = len(buf)
        e = "<"
        hdr = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        ifaces: list[tuple[int, float, float, int]] = []  # linktype, units/s, offset, snaplen
        count = cut = blocks = 0
        last_ts = 0.0
        missing_if: set[int] = set()
        bad_time: set[int] = set()
        try:
            while True:
                while pos + 12 <= n:
                    btype, blen = hdr(buf, pos)
                    if btype == PCAPNG_SHB:
                        bom = buf[pos + 8 : pos + 12]
                        if bom == b"\x4d\x3c\x2b\x1a":
                            e = "<"
                        elif bom == b"\x1a\x2b\x3c\x4d":
                            e = ">"
                        else:
                            self._warn(
                                f"section header at offset {base + pos}: bad byte-order magic"
                            )
                            return
                        hdr = struct.Struct(e + "II").unpack_from
                        epb = struct.Struct(e + "IIIII").unpack_from
                        btype, blen = hdr(buf, pos)
                        ifaces = []
                        bad_time = set()
                    elif blocks == 0:
                        self._warn("pcapng file does not start with a section header")
                        return
                    if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                        self._warn(
                            f"block {blocks + 1} at offset {base + pos}: bad block length {blen}; "
                            f"corrupt block header, stopping"
                        )
                        return
                    end = pos + blen
                    if end > n:
                        break
                    blocks += 1
                    if btype == PCAPNG_EPB or btype == PCAPNG_PB:
                        if blen < 32:
                            self._warn(f"packet block at offset {base + pos} too short; skipped")
                            pos = end
                            continue
                        if btype == PCAPNG_EPB:
                            iface, tsh, tsl, incl, orig = epb(buf, pos + 8)
                        else:  # obsolete Packet Block: 16-bit interface id, 16-bit drops count
                            iface, _drops, tsh, tsl, incl, orig = struct.unpack_from(
                                e + "HHIIII", buf, pos + 8
                            )
                        if pos + 28 + incl > end - 4:
                            self._warn(
                                f"packet block at offset {base + pos}: length overflow; skipped"
                            )
                            pos = end
                            continue
                        if iface >= len(ifaces):
                            if iface not in missing_if:
                                missing_if.add(iface)
                                self._warn(f"packets for undeclared interface {iface} skipped")
                            pos = end
                            continue
                        linktype, units, offset, _snap = ifaces[iface]
                        ts = ((tsh << 32) | tsl) / units + offset
                        if 0.0 <= ts < MAX_TIME:
                            last_ts = ts
                        elif iface not in bad_time:
                            bad_time.add(iface)
                            self._warn(
                                f"interface {iface}: impossible packet time ({ts:.6g} s since "
                                f"1970; damaged if_tsresol / if_tsoffset): those packets get the "
                                f"previous packet's time"
                            )
                        if incl < orig:
                            cut += 1
                        count += 1
                        self.records = count
                        yield (last_ts, linktype, buf[pos + 28 : pos + 28 + incl], orig)
                    elif btype == PCAPNG_SPB:
                        if not ifaces:
                            pos = end
                            continue
                        (orig,) = struct.unpack_from(e + "I", buf, pos + 8)
                        linktype, _u, _o, snap = ifaces[0]
                        incl = min(orig, blen - 16, snap or orig)
                        if incl < orig:
                            cut += 1
                        count += 1
                        self.records = count
                        yield (last_ts, linktype, buf[pos + 12 : pos + 12 + incl], orig)
                    elif btype == PCAPNG_IDB:
                        ifaces.append(self._idb(buf, pos, end, e))
                        self.linktypes.append(ifaces[-1][0])
                    pos = end
                more = self._more()
                if not more:
                    if pos < n:
                        self._warn(
                            f"file truncated: block {blocks + 1} at offset {base + pos} is cut "
                            f"short ({n - pos} bytes left); {count} records read"
                        )
                    return
                base += pos
                buf = buf[pos:] + more
                pos = 0
                n = len(buf)
        finally:
            self.records = count
            self.snaplen_cut = cut

    def _idb(self, buf: bytes, pos: int, end: int, e: str) -> tuple[int, float, float, int]:
        """Interface Description Block: link type, time units per second, offset, snaplen."""
        if end - pos < 20:
            self._warn(f"interface block at offset {pos} too short")
            return (-1, 1e6, 0.0, 0)
        linktype, _res, snaplen = struct.unpack_from(e + "HHI", buf, pos + 8)
        units, offset = 1e6, 0.0
        opt, stop = pos + 16, end - 4
        while opt + 4 <= stop:
            code, olen = struct.unpack_from(e + "HH", buf, opt)
            value = buf[opt + 4 : opt + 4 + olen]
            if code == 0:
                break
            if code == 9 and olen >= 1:  # if_tsresol
                r = value[0]
                units = float(2 ** (r & 0x7F)) if r & 0x80 else float(10 ** (r & 0x7F))
            elif code == 14 and olen >= 8:  # if_tsoffset
                offset = float(struct.unpack_from(e + "q", value)[0])
            opt += 4 + ((olen + 3) & ~3)
        return (linktype, units, offset, snaplen)


def open_capture(source: str | os.PathLike[str] | BinaryIO) -> CaptureReader:
    """Open a capture file for reading; raises :class:`CaptureError` if it is not one."""
    return CaptureReader(source)


class _Prefixed:
    """A read-only stream that returns ``prefix`` and then the rest of ``f`` (no seeking)."""

    def __init__(self, prefix: bytes, f: BinaryIO) -> None:
        self._prefix = prefix
        self._f = f

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0 or size >= len(self._prefix):
                out, self._prefix = self._prefix, b""
                rest = self._f.read(-1 if size < 0 else size - len(out))
                return out + rest
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return self._f.read(size)

    def seek(self, offset: int, /) -> int:
        """Not seekable: ``gzip`` only seeks to rewind, which a pcap reader never asks for."""
        raise io.UnsupportedOperation("seek")


def _read_at_least(f: BinaryIO, size: int) -> bytes:
    out = b""
    while len(out) < size:
        part = f.read(size - len(out))
        if not part:
            break
        out += part
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
