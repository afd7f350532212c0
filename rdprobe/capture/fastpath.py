"""The record loop for the commonest captures, fused (issue 12): classic pcap of Ethernet or Linux
cooked frames, IPv4 without options, TCP.

Why: in a capture of a million packets nearly every packet belongs to a flow rdprobe does not
follow. The general path gives each one a record tuple, a copy of the frame, a
:class:`~rdprobe.capture.linklayer.Packet` and a copy of the payload before
:meth:`FlowTable.feed_packet` drops it. Here a packet is read in place in the reader's chunk: one
header unpack, the flow key as one 12-byte slice (addresses and ports are contiguous in an IPv4
header without options, RFC 791 §3.1 and RFC 9293 §3.1) and one dict lookup. A packet the table
must see (a SYN, a flow it holds, a first payload byte that may start RDP) gets the same Packet
:func:`~rdprobe.capture.linklayer.decode` would build; every other record (VLAN tags, IPv6, IP
options, UDP, fragments, anything short or odd) takes the general path itself. So the table sees
the same packets, in the same order, with the same clock and sweeps as through
:meth:`FlowTable.process` over the reader's records (``tests/test_capture_fastpath.py`` compares
the two on every capture of the test suite and under mutation).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, cast

from rdprobe.capture.flow import SYN
from rdprobe.capture.linklayer import Packet, Skip, decode
from rdprobe.capture.records import CaptureReader

if TYPE_CHECKING:
    from rdprobe.capture.flows import FlowTable

__all__ = ["LINK_OFFSETS", "feed_pcap"]

#: Link types read in place: (offset of the EtherType-style protocol field, of the IP header).
#: Ethernet II (1), Linux cooked v1 (113) and v2 (276); tcpdump.org LINK-LAYER HEADER TYPES.
LINK_OFFSETS = {1: (12, 14), 113: (14, 16), 276: (0, 20)}
ETH_IPV4 = 0x0800
_new = tuple.__new__
_tcp = struct.Struct("!IIxxH").unpack_from  # seq, ack, window (after the ports)


def feed_pcap(table: FlowTable, reader: CaptureReader) -> None:
    """Every record of a classic pcap ``reader`` into ``table`` (then call ``table.finish()``).

    Raises CaptureError if the reader is no classic pcap or was already read; use
    :data:`LINK_OFFSETS` to see whether its link type is one this loop reads in place.
    """
    buf, linktype, scale, limit, endian = reader.pcap_start()
    etype_at, ip_at = LINK_OFFSETS.get(linktype, (-1, -1))
    fast = etype_at >= 0
    # protocol field, then from the IP header: version/IHL, total length, fragment field,
    # protocol, (checksum, addresses, ports, sequence numbers) skipped, data offset, flags
    head = struct.Struct(f"!{etype_at}xH{ip_at - etype_at - 2}xBxHxxHxB22xBB" if fast else "!B")
    unpack_head = head.unpack_from
    unpack_rec = struct.Struct(endian + "IIII").unpack_from
    min_frame = ip_at + 40 if fast else 1 << 62  # IPv4 and TCP headers without options
    index = table._index
    seen = table._seen
    starts = table.start_bytes
    feed_tcp = table.feed_tcp
    feed_packet = table.feed_packet
    on_udp = table.handler.on_udp
    forget = table._forget
    skipped = table.skipped
    now = table.now
    countdown = table._next_sweep
    base, pos, n = 24, 0, len(buf)
    count = cut = tcp = udp = 0
    try:
        while True:
            while pos + 16 <= n:
                sec, frac, incl, orig = unpack_rec(buf, pos)
                if incl > limit:
                    reader.pcap_corrupt(count, base + pos, incl, limit)
                    return
                f = pos + 16
                end = f + incl
                if end > n:
                    break
                if incl < orig:
                    cut += 1
                count += 1
                if incl >= min_frame:
                    etype, vihl, total, frag, proto, doff, flags = unpack_head(buf, f)
                    if etype == ETH_IPV4 and vihl == 0x45 and not frag & 0x1FFF:
                        ip = f + ip_at
                        stop = ip + total
                        if proto == 6 and total >= 40 and doff >= 0x50:
                            start = ip + 20 + (doff >> 4) * 4
                            if start <= stop:  # else decode() says TRUNCATED: the general path
                                ts = sec + frac * scale
                                if ts > now:
                                    now = ts
                                tcp += 1
                                countdown -= 1
                                if countdown <= 0:
                                    table.now = now
                                    table._sweep()
                                    countdown = table._next_sweep
                                key = buf[ip + 12 : ip + 24]
                                entry = index.get(key)
                                if flags & SYN:
                                    pass
                                elif entry is None:  # FlowTable.feed_packet's tests, inlined
                                    if starts is not None and (
                                        start >= stop or start >= end or buf[start] not in starts
                                    ):
                                        pos = end
                                        continue  # mid-stream; its first byte starts nothing
                                    if hash(key) in seen:
                                        pos = end
                                        continue
                                elif (
                                    starts is not None
                                    and start < stop
                                    and start < end
                                    and buf[start] not in starts
                                ):
                                    flow = entry[0]
                                    if flow.streams is None and flow.interest is None:
                                        forget(flow, mark=False)
                                        pos = end
                                        continue
                                if stop > end:  # the snaplen cut the payload
                                    missing = stop - max(end, start)
                                    stop = end
                                else:
                                    missing = 0
                                seq, ack, window = _tcp(buf, ip + 24)
                                pkt = _new(Packet, (
                                    buf[ip + 12 : ip + 16], buf[ip + 16 : ip + 20], 6,
                                    (buf[ip + 20] << 8) | buf[ip + 21],
                                    (buf[ip + 22] << 8) | buf[ip + 23],
                                    seq, ack, flags, window, buf[start:stop], missing,
                                ))  # fmt: skip
                                table.now = now
                                feed_tcp(ts, pkt, key, entry)
                                pos = end
                                continue
                        elif proto == 17 and total >= 28:  # RFC 768; decode()'s bounds
                            start = ip + 28
                            ulen = (buf[ip + 24] << 8) | buf[ip + 25]
                            if ulen >= 8 and ip + 20 + ulen < stop:
                                stop = ip + 20 + ulen
                            if stop > end:
                                missing = stop - max(end, start)
                                stop = end
                            else:
                                missing = 0
                            ts = sec + frac * scale
                            if ts > now:
                                now = ts
                            udp += 1
                            on_udp(ts, _new(Packet, (
                                buf[ip + 12 : ip + 16], buf[ip + 16 : ip + 20], 17,
                                (buf[ip + 20] << 8) | buf[ip + 21],
                                (buf[ip + 22] << 8) | buf[ip + 23],
                                0, 0, 0, 0, buf[start:stop], missing,
                            )))  # fmt: skip
                            pos = end
                            continue
                # the general path, exactly as FlowTable.process would take it
                decoded = decode(linktype, buf[f:end])
                if type(decoded) is Packet:
                    table.now, table._next_sweep = now, countdown
                    feed_packet(sec + frac * scale, decoded)
                    now, countdown = table.now, table._next_sweep
                else:
                    skipped(cast(Skip, decoded))
                pos = end
            refill = reader.pcap_refill(buf, pos, base, count)
            if refill is None:
                return
            buf, base = refill
            pos, n = 0, len(buf)
    finally:
        table.now, table._next_sweep = now, countdown
        table.tcp_packets += tcp
        table.udp_packets += udp
        table.records += count
        reader.records = count
        reader.snaplen_cut = cut
