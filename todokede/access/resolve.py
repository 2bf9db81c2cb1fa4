"""Name resolution for host patterns: the system resolver, or a hosts(5) file.

A :class:`HostsFileResolver` answers as glibc's ``files`` backend does for /etc/hosts
(``multi on``: every line naming a host contributes its address; the first such line gives
the official name), which makes decisions deterministic and offline. :func:`verify_name`
is libwrap's double lookup: reverse, then forward, else the host is ``paranoid``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from todokede.access.patterns import PARANOID, UNKNOWN, fold, inet_aton, parse_ip6
from todokede.errors import RuleError


@dataclass(frozen=True, slots=True)
class HostEntry:
    """A forward lookup's answer: official name, aliases, addresses (as text)."""

    name: str
    aliases: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


class Resolver(Protocol):
    def names(self, addr: str) -> list[str]:
        """Reverse lookup: [official name, *aliases], or [] when the address has none."""
        ...

    def addresses(self, name: str) -> list[str]:
        """Forward lookup: the addresses of a name, in resolver order; [] if none."""
        ...

    def lookup(self, name: str, family: int | None = None) -> HostEntry | None:
        """Forward lookup with the official name (getaddrinfo with AI_CANONNAME)."""
        ...


def ip_key(addr: str) -> tuple[int, int] | None:
    """(family, integer) of an address text; IPv4-mapped IPv6 counts as IPv4."""
    try:
        return socket.AF_INET, int.from_bytes(socket.inet_pton(socket.AF_INET, addr), "big")
    except (OSError, ValueError):
        pass  # not a plain dotted quad (the common case, and inet_aton agrees on it)
    text = addr.split("%", 1)[0]
    if ":" in text:
        value = parse_ip6(text)
        if value is None:
            return None
        if value >> 32 == 0xFFFF:
            return socket.AF_INET, value & 0xFFFFFFFF
        return socket.AF_INET6, value
    if len([r for r in text.split(".") if r]) == 4:
        v4 = inet_aton(text)
        if v4 is not None:
            return socket.AF_INET, v4
    return None


def _text(key: tuple[int, int]) -> str:
    family, value = key
    if family == socket.AF_INET:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


# RFC 6724 default policy table: precedence of destination address kinds. glibc sorts
# getaddrinfo() answers with it, which is why "localhost" gives ::1 before 127.0.0.1.
_POLICY: list[tuple[ipaddress.IPv6Network, int]] = [
    (ipaddress.IPv6Network("::1/128"), 50),
    (ipaddress.IPv6Network("::ffff:0:0/96"), 35),
    (ipaddress.IPv6Network("2002::/16"), 30),
    (ipaddress.IPv6Network("2001::/32"), 5),
    (ipaddress.IPv6Network("fc00::/7"), 3),
    (ipaddress.IPv6Network("::/96"), 1),
    (ipaddress.IPv6Network("fec0::/10"), 1),
    (ipaddress.IPv6Network("3ffe::/16"), 1),
    (ipaddress.IPv6Network("::/0"), 40),
]


def _precedence(key: tuple[int, int]) -> int:
    family, value = key
    v6 = ipaddress.IPv6Address((0xFFFF << 32) | value if family == socket.AF_INET else value)
    best, best_len = 40, -1
    for net, prec in _POLICY:
        if v6 in net and net.prefixlen > best_len:
            best, best_len = prec, net.prefixlen
    return best


@dataclass
class HostsFileResolver:
    """Resolve through a hosts(5)-format file only."""

    path: Path
    _entries: list[tuple[tuple[int, int], str, tuple[str, ...]]] = field(
        default_factory=list, repr=False
    )

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            message = f"cannot read hosts file: {exc.strerror}"
            raise RuleError(message, source=str(self.path)) from None
        for raw in data.decode("latin-1").splitlines():
            words = raw.split("#", 1)[0].split()
            if len(words) < 2:
                continue
            key = ip_key(words[0]) if ":" in words[0] or _strict4(words[0]) else None
            if key is None:
                continue
            self._entries.append((key, words[1], tuple(words[2:])))

    def names(self, addr: str) -> list[str]:
        key = ip_key(addr)
        for entry_key, name, aliases in self._entries:
            if entry_key == key:
                return [name, *aliases]
        return []

    def lookup(self, name: str, family: int | None = None) -> HostEntry | None:
        numeric = ip_key(name) if ":" in name else _numeric4(name)
        if numeric is not None:
            if family is not None and numeric[0] != family:
                return None
            return HostEntry(name, (), (_text(numeric),))
        want = fold(name)
        official: str | None = None
        aliases: tuple[str, ...] = ()
        keys: list[tuple[int, int]] = []
        for key, canon, more in self._entries:
            if family is not None and key[0] != family:
                continue
            if want == fold(canon) or want in (fold(a) for a in more):
                if official is None:
                    official, aliases = canon, more
                if key not in keys:
                    keys.append(key)
        if official is None:
            return None
        keys.sort(key=_precedence, reverse=True)  # stable: file order within a kind
        return HostEntry(official, aliases, tuple(_text(k) for k in keys))

    def addresses(self, name: str) -> list[str]:
        entry = self.lookup(name)
        return list(entry.addresses) if entry else []


def _strict4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _numeric4(name: str) -> tuple[int, int] | None:
    """glibc's getaddrinfo() takes any inet_aton() form ("1.2.3" is 1.2.0.3)."""
    value = inet_aton(name)
    return None if value is None else (socket.AF_INET, value)


class SystemResolver:
    """The system's resolver (NSS: /etc/hosts, DNS, ...), as libwrap uses it."""

    def names(self, addr: str) -> list[str]:
        key = ip_key(addr)
        if key is None:
            return []
        try:
            name, aliases, _ = socket.gethostbyaddr(_text(key))
        except (OSError, UnicodeError):
            return []
        return [name, *aliases]

    def lookup(self, name: str, family: int | None = None) -> HostEntry | None:
        try:
            infos = socket.getaddrinfo(
                name, None, family or 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME
            )
        except (OSError, UnicodeError, ValueError):
            return None
        if not infos:
            return None
        official = infos[0][3] or name
        seen: list[str] = []
        for info in infos:
            text = str(info[4][0])
            if text not in seen:
                seen.append(text)
        return HostEntry(official, (), tuple(seen))

    def addresses(self, name: str) -> list[str]:
        entry = self.lookup(name)
        return list(entry.addresses) if entry else []


def verify_name(resolver: Resolver, addr: str) -> tuple[str, list[str]]:
    """libwrap's sock_hostname(): the host's name after the reverse+forward check.

    Returns the name, ``unknown`` (no reverse name) or ``paranoid`` (the forward lookup
    disagrees), and the warnings libwrap logs on the way.
    """
    key = ip_key(addr)
    if key is None:
        return UNKNOWN, []
    found = resolver.names(addr)
    if not found:
        return UNKNOWN, []
    name = found[0]
    if ip_key(name) is not None or inet_aton(name) is not None:
        return PARANOID, [f"host name/name mismatch: reverse lookup results in non-FQDN {name}"]
    entry = resolver.lookup(name, key[0])
    if entry is None:
        fam = "AF_INET" if key[0] == socket.AF_INET else "AF_INET6"
        return PARANOID, [f"can't verify hostname: getaddrinfo({name}, {fam}) failed"]
    if fold(entry.name) != fold(name) and fold(name) != "localhost":
        return PARANOID, [f"host name/name mismatch: {name} != {entry.name}"]
    if any(ip_key(a) == key for a in entry.addresses):
        return name, []
    return PARANOID, [f"host name/address mismatch: {_text(key)} != {entry.name}"]
