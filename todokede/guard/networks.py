"""Addresses as guard keeps them, and the networks it never bans.

Both sit on the path of every failing line, so they use the C library's ``inet_pton`` and
integer masks rather than :mod:`ipaddress` objects (which cost ten times as much).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

_MAPPED = b"\0" * 10 + b"\xff\xff"
MEMO_MAX = 65_536  # a spoofed flood must not grow the memo without bound


def normalize(text: str) -> str | None:
    """The canonical form of an IP address (``[::1]`` and ``::ffff:1.2.3.4`` included);
    None for anything else (a host name is never banned: it can change its address)."""
    text = text.strip().strip("[]")
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    text = text.split("%", 1)[0]
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    if packed[:12] == _MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def _packed(addr: str) -> bytes | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, addr)
        except (OSError, ValueError):
            continue
    return None


class Ignore:
    """``ignoreip``: addresses and networks never banned."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.nets: dict[int, list[tuple[int, int]]] = {4: [], 16: []}
        for n in networks:
            net = ipaddress.ip_network(n, strict=False)
            size = 4 if net.version == 4 else 16
            self.nets[size].append((int(net.network_address), int(net.netmask)))
        self._memo: dict[str, bool] = {}

    def __contains__(self, addr: str) -> bool:
        known = self._memo.get(addr)
        if known is None:
            packed = _packed(addr)
            if packed is None:
                return True  # not an address: nothing to ban
            value = int.from_bytes(packed, "big")
            known = False
            for net, mask in self.nets[len(packed)]:
                if value & mask == net:
                    known = True
                    break
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()
            self._memo[addr] = known
        return known
