"""One direction of a TCP byte stream rebuilt from captured segments (RFC 9293 §3.4 sequence space).

Stream offsets count from the byte after the SYN, or from the first sequence number seen when the
capture starts mid-connection (data sent before it is then ignored as retransmitted). Sequence
numbers are unwrapped modulo 2**32 around the next expected offset, so wraparound is transparent.

Policy for overlapping data: **first seen wins** — bytes already delivered or buffered are never
replaced by a later segment covering the same offsets (retransmissions and overlaps only fill holes).
Data is never guessed: a hole becomes a :class:`StreamGap` when (a) the peer acknowledges data beyond
it (the receiver got bytes the capture missed), (b) buffered out-of-order data exceeds ``max_buffer``
bytes or ``max_segments`` segments, or (c) :meth:`Reassembler.flush` is called at the end of the flow.

Incremental use: call :meth:`Reassembler.feed` for each segment and :meth:`Reassembler.ack` with each
ACK the peer sends, then :meth:`Reassembler.pop` to take the ready :class:`StreamData` /
:class:`StreamGap` events in stream order. Each carries the timestamp of the packet that made it
available. Popped data is not retained, so memory is ``max_buffer`` plus what the caller leaves queued.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import NamedTuple

__all__ = ["Reassembler", "StreamData", "StreamEvent", "StreamGap"]

MASK = 0xFFFFFFFF
HALF = 1 << 31
#: An ACK further than this beyond the delivered data is taken as bogus, not as a capture loss.
MAX_ACK_JUMP = 1 << 26


class StreamData(NamedTuple):
    """Contiguous bytes at stream ``offset``, available from time ``ts``."""

    offset: int
    data: bytes
    ts: float


class StreamGap(NamedTuple):
    """``length`` bytes at stream ``offset`` that the capture does not contain."""

    offset: int
    length: int
    ts: float


StreamEvent = StreamData | StreamGap


class Reassembler:
    """Rebuild one direction of a TCP connection; see the module docstring for the policy."""

    __slots__ = (
        "_known_end",
        "_pending",
        "_pending_bytes",
        "_starts",
        "base",
        "events",
        "fin_offset",
        "gap_bytes",
        "gaps",
        "max_buffer",
        "max_segments",
        "next",
        "out_of_order",
        "overlap_bytes",
        "retransmitted_bytes",
        "syn_seen",
    )

    def __init__(self, max_buffer: int = 1 << 20, max_segments: int = 4096) -> None:
        self.max_buffer = max_buffer
        self.max_segments = max_segments
        self.base: int | None = None  # sequence number of stream offset 0
        self.syn_seen = False
        self.next = 0  # next stream offset to deliver
        self.fin_offset: int | None = None
        self.events: list[StreamEvent] = []
        self._pending: dict[int, bytes] = {}
        self._starts: list[int] = []
        self._pending_bytes = 0
        self._known_end = 0
        self.retransmitted_bytes = 0
        self.overlap_bytes = 0
        self.out_of_order = 0
        self.gaps = 0
        self.gap_bytes = 0

    # -- input -------------------------------------------------------------------------------------

    def feed(
        self,
        seq: int,
        payload: bytes,
        ts: float,
        *,
        syn: bool = False,
        fin: bool = False,
        missing: int = 0,
    ) -> None:
        """Add one segment: its sequence number, captured payload and flags.

        ``missing`` is the number of payload bytes the snaplen cut off after ``payload``; they stay
        a hole until a retransmission fills it or it is declared a gap.
        """
        if syn:
            if not self.syn_seen and (self.base is None or (not self.next and not self._starts)):
                self.base = (seq + 1) & MASK
                self.syn_seen = True
                self._known_end = 0
            seq = (seq + 1) & MASK
        elif self.base is None:
            self.base = seq
        off = self._offset(seq)
        size = len(payload)
        end = off + size
        if fin:
            fin_at = end + missing
            if self.fin_offset is None or fin_at < self.fin_offset:
                self.fin_offset = fin_at
        if end + missing > self._known_end:
            self._known_end = end + missing
        if not size:
            return
        nxt = self.next
        if end <= nxt:
            self.retransmitted_bytes += size
            return
        if off < nxt:
            self.overlap_bytes += nxt - off
            payload = payload[nxt - off :]
            off = nxt
        if off == nxt:
            self.events.append(StreamData(off, payload, ts))
            self.next = end
            if self._starts:
                self._drain(ts)
        else:
            self.out_of_order += 1
            self._store(off, payload)
            if self._pending_bytes > self.max_buffer or len(self._starts) > self.max_segments:
                while self._starts and (
                    self._pending_bytes > self.max_buffer or len(self._starts) > self.max_segments
                ):
                    self._gap_to(self._starts[0], ts)
                    self._drain(ts)

    def ack(self, ack_seq: int, ts: float) -> None:
        """The peer acknowledged up to ``ack_seq``: bytes below it that were not captured are a gap."""
        if self.base is None:
            return
        acked = self._offset(ack_seq)
        if self.fin_offset is not None and acked > self.fin_offset:
            acked = self.fin_offset
        if acked <= self.next or acked - self.next > MAX_ACK_JUMP:
            return
        if self._starts:
            self._gap_to(min(acked, self._starts[0]), ts)
            self._drain(ts)
        elif acked > self.next + 1:  # +1: an ACK of a FIN the capture missed is no data gap
            self._gap_to(acked, ts)

    def flush(self, ts: float) -> None:
        """End of the flow (or of the capture): deliver buffered data, declaring the holes gaps."""
        while self._starts:
            self._gap_to(self._starts[0], ts)
            self._drain(ts)
        end = self._known_end if self.fin_offset is None else min(self._known_end, self.fin_offset)
        if end > self.next:
            self._gap_to(end, ts)

    def pop(self) -> list[StreamEvent]:
        """Take the events ready so far, in stream order."""
        events = self.events
        self.events = []
        return events

    @property
    def buffered(self) -> int:
        """Bytes held out of order, waiting for a hole to fill."""
        return self._pending_bytes

    # -- internals ---------------------------------------------------------------------------------

    def _offset(self, seq: int) -> int:
        """Unwrap a 32-bit sequence number to the stream offset nearest the next expected one."""
        delta = ((seq - self.base - self.next) & MASK) if self.base is not None else 0
        if delta >= HALF:
            delta -= 1 << 32
        return self.next + delta

    def _gap_to(self, offset: int, ts: float) -> None:
        if offset > self.next:
            self.events.append(StreamGap(self.next, offset - self.next, ts))
            self.gaps += 1
            self.gap_bytes += offset - self.next
            self.next = offset

    def _drain(self, ts: float) -> None:
        starts, pending = self._starts, self._pending
        while starts and starts[0] <= self.next:
            start = starts.pop(0)
            data = pending.pop(start)
            self._pending_bytes -= len(data)
            end = start + len(data)
            if end <= self.next:
                self.overlap_bytes += len(data)
                continue
            if start < self.next:
                self.overlap_bytes += self.next - start
                data = data[self.next - start :]
            self.events.append(StreamData(self.next, data, ts))
            self.next = end

    def _store(self, off: int, data: bytes) -> None:
        """Buffer out-of-order data, keeping bytes already held (first seen wins)."""
        starts, pending = self._starts, self._pending
        end = off + len(data)
        i = bisect_right(starts, off) - 1
        if i < 0:
            i = 0
        cur = off
        while cur < end and i < len(starts):
            s = starts[i]
            e = s + len(pending[s])
            if e <= cur:
                i += 1
                continue
            if s >= end:
                break
            if s > cur:
                self._put(cur, data[cur - off : s - off])
                i += 1  # the inserted piece sits before s
            self.overlap_bytes += min(e, end) - max(s, cur)
            cur = max(cur, e)
            i += 1
        if cur < end:
            self._put(cur, data[cur - off :])

    def _put(self, off: int, data: bytes) -> None:
        self._pending[off] = data
        insort(self._starts, off)
        self._pending_bytes += len(data)
