"""The PROXY protocol header (HAProxy's specification, versions 1 and 2) that tells the
backend who the client is: a service behind ``wrap`` otherwise sees and logs only wrap's
own address, and cannot lock out the address that guesses passwords.

Version 1 is one line of text::

    PROXY TCP4 192.0.2.5 192.0.2.1 40000 143\\r\\n
    PROXY TCP6 2001:db8::5 2001:db8::1 40000 143\\r\\n

version 2 a binary block: the 12-byte signature, version and command (0x21: version 2,
PROXY), family and transport (0x11 TCP over IPv4, 0x21 TCP over IPv6), the length of the
addresses, then source and destination address and port in network order. The header is
the first thing the backend reads, before any byte of the client.
"""

from __future__ import annotations

import ipaddress
import struct

VERSIONS = ("v1", "v2")
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_PROXY = 0x21
_TCP4, _TCP6 = 0x11, 0x21

Address = tuple[str, int]


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(host.partition("%")[0])  # a scope is the host's, not the peer's
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def header(version: str, client: Address, local: Address) -> bytes:
    """The header for a connection from ``client`` to ``local`` (wrap's own address):
    ``version`` is ``"v1"`` or ``"v2"``. Both addresses are given in one family: IPv4
    when both are (IPv4-mapped addresses count as IPv4), else IPv6."""
    src, dst = _ip(client[0]), _ip(local[0])
    if src.version != dst.version:  # one IPv4, one IPv6: both as IPv6
        src, dst = (
            ipaddress.IPv6Address(f"::ffff:{a}") if a.version == 4 else a for a in (src, dst)
        )
    if version == "v1":
        family = "TCP4" if src.version == 4 else "TCP6"
        return f"PROXY {family} {src} {dst} {client[1]} {local[1]}\r\n".encode("ascii")
    if version != "v2":
        raise ValueError(f"PROXY protocol version {version!r} (v1 or v2)")
    kind = _TCP4 if src.version == 4 else _TCP6
    addresses = src.packed + dst.packed + struct.pack("!HH", client[1], local[1])
    return SIGNATURE + bytes((_V2_PROXY, kind)) + struct.pack("!H", len(addresses)) + addresses
