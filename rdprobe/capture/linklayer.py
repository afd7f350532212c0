"""Cheap link, IP, TCP and UDP header parsing for the capture fast path (no scapy layers).

Link types (tcpdump.org "LINK-LAYER HEADER TYPES"): ``LINKTYPE_NULL`` 0 and ``LINKTYPE_LOOP`` 108
(BSD loopback, address family in host / network byte order), ``LINKTYPE_ETHERNET`` 1 (with any number
of 802.1Q / 802.1ad / QinQ tags), ``LINKTYPE_RAW`` 101 and the platform ``DLT_RAW`` values 12 and 14,
``LINKTYPE_IPV4`` 228 / ``LINKTYPE_IPV6`` 229, ``LINKTYPE_LINUX_SLL`` 113 and ``LINKTYPE_LINUX_SLL2``
276. Network layers: IPv4 (RFC 791, options skipped; fragments other than the first are skipped with
:attr:`Skip.FRAGMENT`) and IPv6 (RFC 8200, extension headers walked). Transport: TCP (RFC 9293) and
UDP (RFC 768).

:func:`decode` never raises: it returns a :class:`Packet` or a :class:`Skip` reason. Payloads end at
the IP total length, so Ethernet padding is stripped; bytes the IP header promises but the snaplen cut
are counted in :attr:`Packet.missing`.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from typing import NamedTuple

__all__ = ["TCP", "UDP", "Packet", "Skip", "TcpFlags", "decode", "format_address"]

TCP = 6
UDP = 17


class TcpFlags(enum.IntFlag):
    """TCP header flags (RFC 9293 §3.1)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


class Skip(enum.IntEnum):
    """Why a record did not yield a TCP/UDP packet."""

    LINKTYPE = 1  # unsupported link type
    NOT_IP = 2  # ARP, LLDP, ... or an unknown address family
    FRAGMENT = 3  # IPv4/IPv6 fragment other than the first
    PROTOCOL = 4  # IP but neither TCP nor UDP (ICMP, ESP, ...)
    TRUNCATED = 5  # headers cut short by the snaplen or malformed


class Packet(NamedTuple):
    """One TCP or UDP packet. Addresses are raw 4- or 16-byte strings (see :func:`format_address`).

    For UDP ``seq``, ``ack``, ``flags`` and ``window`` are 0. ``missing`` is how many payload bytes
    the IP length promises beyond what was captured (snaplen cut).
    """

    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    missing: int


ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100, 0x9200)
# BSD address families for IPv6 differ per OS: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
AF_INET = 2
AF_INET6 = (10, 24, 28, 30)
IPV6_EXT = {0, 43, 60, 135, 139, 140}  # hop-by-hop, routing, dest opts, mobility, HIP, shim6

_new = tuple.__new__  # builds a Packet without NamedTuple's keyword-argument wrapper (per packet)
_u16 = struct.Struct("!H").unpack_from
_ipv4 = struct.Struct("!BxHxxHxB").unpack_from  # ver/ihl, total length, frag field, protocol
_tcp = struct.Struct("!HHIIBBH").unpack_from
_udp = struct.Struct("!HHH").unpack_from


def decode(linktype: int, data: bytes) -> Packet | Skip:
    """Parse one captured frame down to TCP/UDP; never raises."""
    if linktype == 1:  # Ethernet
        if len(data) < 14:
            return Skip.TRUNCATED
        off = 12
        etype = (data[12] << 8) | data[13]
        while etype in ETH_VLAN:
            off += 4
            if len(data) < off + 2:
                return Skip.TRUNCATED
            etype = (data[off] << 8) | data[off + 1]
        off += 2
    elif linktype in (101, 12, 14, 228, 229):
        off = 0
        etype = _by_version(data, 0)
    elif linktype == 113:  # Linux cooked v1: protocol at 14
        if len(data) < 16:
            return Skip.TRUNCATED
        off = 16
        etype = (data[14] << 8) | data[15]
    elif linktype == 276:  # Linux cooked v2: protocol at 0
        if len(data) < 20:
            return Skip.TRUNCATED
        off = 20
        etype = (data[0] << 8) | data[1]
    elif linktype == 0 or linktype == 108:
        if len(data) < 4:
            return Skip.TRUNCATED
        off = 4
        if linktype == 108:
            af = int.from_bytes(data[:4], "big")
        else:  # host byte order of the capturing machine: the non-zero half tells
            af = int.from_bytes(data[:4], "little")
            if af > 0xFFFF:
                af = int.from_bytes(data[:4], "big")
        etype = ETH_IPV4 if af == AF_INET else ETH_IPV6 if af in AF_INET6 else _by_version(data, 4)
    else:
        return Skip.LINKTYPE
    have = len(data)
    if etype == ETH_IPV4:  # RFC 791 §3.1, inlined: the common case costs one call
        if have < off + 20:
            return Skip.TRUNCATED
        vihl, total, frag, proto = _ipv4(data, off)
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or have < off + ihl:
            return Skip.TRUNCATED
        if frag & 0x1FFF:
            return Skip.FRAGMENT
        if total == 0:  # TCP segmentation offload leaves the length field 0
            end = have
        elif total < ihl:
            return Skip.TRUNCATED
        else:
            end = off + total
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        p = off + ihl
    elif etype == ETH_IPV6:
        ip6 = _ipv6_header(data, off)
        if isinstance(ip6, Skip):
            return ip6
        p, end, proto, src, dst = ip6
    else:
        return Skip.NOT_IP
    if proto == TCP:  # RFC 9293 §3.1
        if have < p + 20:
            return Skip.TRUNCATED
        sport, dport, seq, ack, doff, flags, window = _tcp(data, p)
        start = p + (doff >> 4) * 4
        if start < p + 20 or end < start:
            return Skip.TRUNCATED
    elif proto == UDP:  # RFC 768
        if have < p + 8:
            return Skip.TRUNCATED
        sport, dport, ulen = _udp(data, p)
        seq = ack = flags = window = 0
        start = p + 8
        if ulen >= 8 and p + ulen < end:
            end = p + ulen
    else:
        return Skip.PROTOCOL
    if end > have:
        missing = end - max(have, start)
        end = have
    else:
        missing = 0
    return _new(Packet, (src, dst, proto, sport, dport, seq, ack, flags, window, data[start:end],
                         missing))  # fmt: skip


def _by_version(data: bytes, off: int) -> int:
    if len(data) <= off:
        return 0
    v = data[off] >> 4
    return ETH_IPV4 if v == 4 else ETH_IPV6 if v == 6 else 0


def _ipv6_header(data: bytes, off: int) -> tuple[int, int, int, bytes, bytes] | Skip:
    """RFC 8200 §3-4: (transport offset, end of payload, next header, src, dst) or a skip."""
    if len(data) < off + 40 or data[off] >> 4 != 6:
        return Skip.TRUNCATED
    plen = _u16(data, off + 4)[0]
    nxt = data[off + 6]
    src = data[off + 8 : off + 24]
    dst = data[off + 24 : off + 40]
    end = off + 40 + plen if plen else len(data)  # 0: jumbogram or offload
    p = off + 40
    for _ in range(16):
        if nxt in IPV6_EXT:
            if len(data) < p + 2:
                return Skip.TRUNCATED
            nxt, hlen = data[p], (data[p + 1] + 1) * 8
        elif nxt == 44:  # fragment header
            if len(data) < p + 8:
                return Skip.TRUNCATED
            if _u16(data, p + 2)[0] & 0xFFF8:
                return Skip.FRAGMENT
            nxt, hlen = data[p], 8
        elif nxt == 51:  # authentication header: length in 4-octet units minus 2
            if len(data) < p + 2:
                return Skip.TRUNCATED
            nxt, hlen = data[p], (data[p + 1] + 2) * 4
        else:
            break
        p += hlen
    return (p, end, nxt, src, dst)


def format_address(raw: bytes) -> str:
    """Text form of a 4- or 16-byte address (``192.0.2.1``, ``2001:db8::1``)."""
    return str(ipaddress.ip_address(raw))
