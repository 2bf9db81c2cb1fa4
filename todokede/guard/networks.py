"""Addresses as guard keeps them, and the networks it never bans."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize(text: str) -> str | None:
    """The canonical form of an IP address (``[::1]`` and ``::ffff:1.2.3.4`` included);
    None for anything else (a host name is never banned: it can change its address)."""
    text = text.strip().strip("[]")
    if "%" in text:
        text = text.split("%", 1)[0]
    try:
        ip: Address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class Ignore:
    """``ignoreip``: addresses and networks never banned."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.nets = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._memo: dict[str, bool] = {}

    def __contains__(self, addr: str) -> bool:
        known = self._memo.get(addr)
        if known is None:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                return True  # not an address: nothing to ban
            known = any(ip.version == n.version and ip in n for n in self.nets)
            if len(self._memo) > 65_536:  # spoofed floods: keep the memo bounded
                self._memo.clear()
            self._memo[addr] = known
        return known
