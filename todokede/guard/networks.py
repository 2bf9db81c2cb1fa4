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
    found = _canonical(text)
    return None if found is None else found[0]


def _canonical(text: str) -> tuple[str, bytes] | None:
    """:func:`normalize`, and the address packed."""
    text = text.strip().strip("[]")
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
        return socket.inet_ntop(socket.AF_INET, packed), packed
    except OSError:
        pass
    text = text.split("%", 1)[0]
    try:
        packed = socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return None
    if packed[:12] == _MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:]), packed[12:]
    return socket.inet_ntop(socket.AF_INET6, packed), packed


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
        self.hosts: set[bytes] = set()  # single addresses: one lookup
        for n in networks:
            net = ipaddress.ip_network(n, strict=False)
            if net.num_addresses == 1:
                self.hosts.add(net.network_address.packed)
                continue
            size = 4 if net.version == 4 else 16
            self.nets[size].append((int(net.network_address), int(net.netmask)))
        self._memo: dict[str, bool] = {}
        self._banable: dict[str, str | None] = {}

    def __contains__(self, addr: str) -> bool:
        known = self._memo.get(addr)
        if known is None:
            packed = _packed(addr)
            if packed is None:
                return True  # not an address: nothing to ban
            known = self._covers(packed)
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()
            self._memo[addr] = known
        return known

    def _covers(self, packed: bytes) -> bool:
        if packed in self.hosts:
            return True
        nets = self.nets[len(packed)]
        if not nets:
            return False
        value = int.from_bytes(packed, "big")
        covered = False
        for net, mask in nets:
            if value & mask == net:
                covered = True
                break
        return covered

    def banable(self, logged: str) -> str | None:
        """The canonical form of an address as logged, unless it is none (a host name)
        or one never banned: :func:`normalize` and ``in``, remembered for the addresses
        a log repeats."""
        memo = self._banable
        if logged in memo:
            return memo[logged]
        found = _canonical(logged)
        addr = None if found is None or self._covers(found[1]) else found[0]
        if len(memo) >= MEMO_MAX:
            memo.clear()
        memo[logged] = addr
        return addr
