"""Indexes over a table's client patterns: which rules can match a client at all.

An index answers with rule positions only; the engine still evaluates what it finds in
rule order, so the first match is libwrap's. Networks (``n/m`` with a contiguous mask,
``n/len``, ``[v6net]/len``) are address ranges that are either nested or disjoint, so a
sorted list of range boundaries finds every range holding an address with one bisection.
For a client written as a plain dotted quad (what a socket gives), exact addresses and
``a.b.`` prefixes are ranges too, and one bisection answers for all three kinds; any other
address text is looked up by its strings, as libwrap compares it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Container, Hashable, Iterable
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_pton
from typing import Protocol, TypeVar

from todokede.access.patterns import Key, fold

_K = TypeVar("_K", bound=Hashable)
_CHAIN_LIMIT = 256  # positions kept flat per range; beyond that, collected per query
_FULL4 = 0xFFFFFFFF
_FULL6 = (1 << 128) - 1


def canonical4(text: str) -> int | None:
    """The address of a plain dotted quad (four decimal parts, no leading zeros: exactly
    inet_pton's form), else None. 255.255.255.255 is None: libwrap's inet_addr() cannot
    tell it from an error, so no network ever holds it."""
    try:
        value = int.from_bytes(inet_pton(AF_INET, text), "big")
    except (OSError, ValueError):
        return None
    return None if value == _FULL4 else value


def plain6(text: str) -> int | None:
    """The address of an IPv6 text without a dot (no embedded IPv4 part), else None."""
    if "." in text or "%" in text:
        return None
    try:
        return int.from_bytes(inet_pton(AF_INET6, text), "big")
    except (OSError, ValueError):
        return None


def _prefix_range(text: str) -> tuple[int, int] | None:
    """The range of a plain ``a.``, ``a.b.`` or ``a.b.c.`` prefix (what canonical
    addresses starting with it cover), else None."""
    parts = text[:-1].split(".")
    if not 1 <= len(parts) <= 3:
        return None
    value = 0
    for part in parts:
        if not part.isdigit() or not part.isascii() or (len(part) > 1 and part[0] == "0"):
            return None
        if int(part) > 255:
            return None
        value = value << 8 | int(part)
    free = 8 * (4 - len(parts))
    return value << free, (value << free) | ((1 << free) - 1)


def _cut(positions: list[int], final: Container[int]) -> list[int]:
    """``positions`` (sorted) up to the first one whose hit is certainly a match: the
    walk never goes past it."""
    for i, pos in enumerate(positions):
        if pos in final:
            return positions[: i + 1]
    return positions


def key_nets(keys: Iterable[Key | None], six: bool) -> list[tuple[int, int]] | None:
    """The (mask, net) pairs that say whether these patterns match a client given as a
    plain address (a dotted quad, or with ``six`` an IPv6 address without a dot); None
    when one of them is not that kind of pattern (a suffix, a name, a keyword...)."""
    out: list[tuple[int, int]] = []
    for key in keys:
        match key:
            case ("*",):
                out.append((0, 0))
            case ("x",):
                pass
            case ("a", str() as text):
                value = None if six else canonical4(text)
                if value is not None:
                    out.append((_FULL4, value))
            case ("p", str() as text):
                span = None if six else _prefix_range(text)
                if span is not None:
                    out.append((_FULL4 ^ (span[1] - span[0]), span[0]))
            case ("m", int() as mask, int() as net):
                if not six:
                    out.append((mask, net))
            case ("6", int() as mask, int() as net):
                if six:
                    out.append((mask, net))
            case _:
                return None
    return out


def chain_match(chain: list[list[tuple[int, int]]], i: int, value: int) -> bool:
    """_list_match() over (mask, net) pairs: ``a EXCEPT b EXCEPT c`` from part ``i`` on."""
    for mask, net in chain[i]:
        if value & mask == net:
            return i + 1 == len(chain) or not chain_match(chain, i + 1, value)
    return False


class NetIndex:
    """Ranges that are pairwise nested or disjoint, each with its rule positions."""

    def __init__(self, ranges: Iterable[tuple[int, int, int]], final: Container[int] = ()) -> None:
        groups: dict[tuple[int, int], list[int]] = {}
        for lo, hi, pos in ranges:
            groups.setdefault((lo, hi), []).append(pos)
        spans = sorted(groups, key=lambda r: (r[0], -r[1]))
        self.bounds: list[int] = []
        self.owners: list[int] = []  # the innermost range from each bound on (-1: none)
        self.parents: list[int] = []
        self.own: list[list[int]] = []
        self.flat: list[tuple[int, ...] | None] = []
        self.final = final
        stack: list[int] = []
        for node, (lo, hi) in enumerate(spans):
            while stack and spans[stack[-1]][1] < lo:
                self._leave(stack, spans)
            parent = stack[-1] if stack else -1
            own = _cut(sorted(set(groups[lo, hi])), final)
            above = self.flat[parent] if parent >= 0 else ()
            self.parents.append(parent)
            self.own.append(own)
            if above is None or len(above) + len(own) > _CHAIN_LIMIT:
                self.flat.append(None)
            else:
                self.flat.append(tuple(_cut(sorted(set(above).union(own)), final)))
            self._emit(lo, node)
            stack.append(node)
        while stack:
            self._leave(stack, spans)

    def _emit(self, bound: int, owner: int) -> None:
        if self.bounds and self.bounds[-1] == bound:
            self.owners[-1] = owner
        else:
            self.bounds.append(bound)
            self.owners.append(owner)

    def _leave(self, stack: list[int], spans: list[tuple[int, int]]) -> None:
        node = stack.pop()
        self._emit(spans[node][1] + 1, stack[-1] if stack else -1)

    def __bool__(self) -> bool:
        return bool(self.bounds)

    def find(self, point: int) -> tuple[int, ...] | list[int]:
        """Positions of every range holding ``point``, sorted."""
        i = bisect_right(self.bounds, point) - 1
        if i < 0:
            return ()
        node = self.owners[i]
        if node < 0:
            return ()
        flat = self.flat[node]
        if flat is not None:
            return flat
        out: list[int] = []
        while node >= 0:
            out += self.own[node]
            node = self.parents[node]
        return _cut(sorted(set(out)), self.final)


def _suffixes(text: str) -> list[str]:
    """Every proper suffix of ``text`` that starts with a dot (what ``.dom`` compares)."""
    out = []
    i = text.find(".", 1)
    while i > 0:
        out.append(text[i:])
        i = text.find(".", i + 1)
    return out


def _prefixes(text: str) -> list[str]:
    """Every prefix of ``text`` that ends with a dot (what ``a.b.`` compares)."""
    out = []
    i = text.find(".")
    while i >= 0:
        out.append(text[: i + 1])
        i = text.find(".", i + 1)
    return out


class ClientIndex:
    """The index-findable client patterns of one table, by the rules that hold them.

    ``keyed`` comes in rule order; ``final`` holds the rules whose hit is certainly a
    match (no EXCEPT part): every list stops at its first such rule."""

    def __init__(self, keyed: Iterable[tuple[int, Key]], final: Container[int] = ()) -> None:
        self.exact: dict[str, list[int]] = {}
        self.prefix: dict[str, list[int]] = {}
        self.suffix: dict[str, list[int]] = {}
        self.names: dict[str, list[int]] = {}
        self.domains: dict[str, list[int]] = {}
        self.odd: dict[tuple[int, int], list[int]] = {}  # IPv4 nets with a non-contiguous mask
        self.odd_masks: list[int] = []
        self.everyone: list[int] = []  # ALL
        nets4: list[tuple[int, int, int]] = []
        plain4: list[tuple[int, int, int]] = []  # nets, plus exact addresses and prefixes
        nets6: list[tuple[int, int, int]] = []
        by_text = {
            "a": self.exact,
            "p": self.prefix,
            "s": self.suffix,
            "n": self.names,
            "d": self.domains,
        }
        for pos, key in keyed:
            match key:
                case (str() as kind, str() as text):
                    _add(by_text[kind], text, pos, final)
                    span = _plain_span(kind, text)
                    if span is not None:
                        plain4.append((*span, pos))
                case ("m", int() as mask, int() as net):
                    free = ~mask & _FULL4
                    if free & (free + 1):
                        _add(self.odd, (mask, net), pos, final)
                        if mask not in self.odd_masks:
                            self.odd_masks.append(mask)
                    else:
                        nets4.append((net, net | free, pos))
                        plain4.append((net, net | free, pos))
                case ("6", int() as mask, int() as net):
                    nets6.append((net, net | (~mask & _FULL6), pos))
                case ("*",):
                    last = self.everyone[-1] if self.everyone else -1
                    if last != pos and last not in final:
                        self.everyone.append(pos)
                    plain4.append((0, _FULL4, pos))
                    nets6.append((0, _FULL6, pos))
        self._nets4: NetIndex | list[tuple[int, int, int]] = nets4  # built on first use
        self._final = final
        self.plain4 = NetIndex(plain4, final)
        self.nets6 = NetIndex(nets6, final)  # ALL too: every IPv6 address is in it
        self.has_names = bool(self.names or self.domains)

    def address_hits(self, host: _Host) -> list[int]:
        """Rules with a pattern that matches the client's address text or value."""
        out: list[int] = []
        plain = host.canon4()
        if plain is not None:
            # A dotted quad: no name pattern can equal it or end it (they hold a letter).
            if self.plain4:
                out += self.plain4.find(plain)
            for mask in self.odd_masks:
                out += self.odd.get((mask, plain & mask), ())
            if self.suffix:
                for text in _suffixes(host.key()):
                    out += self.suffix.get(text, ())
            return out
        text = host.key()
        out += self.exact.get(text, ())
        if self.prefix:
            for p in _prefixes(text):
                out += self.prefix.get(p, ())
        if self.suffix:
            for s in _suffixes(text):
                out += self.suffix.get(s, ())
        if self._nets4 or self.odd_masks:
            a4 = host.ip4()
            if a4 is not None:
                out += self.nets4().find(a4)
                for mask in self.odd_masks:
                    out += self.odd.get((mask, a4 & mask), ())
        a6 = host.ip6() if self.nets6 else None
        if a6 is not None:
            out += self.nets6.find(a6)
        else:
            out += self.everyone
        if self.has_names:
            out += self.name_hits(text)
        return out

    def nets4(self) -> NetIndex:
        """The IPv4 networks alone, for an address that is not a plain dotted quad (rare:
        built when first needed)."""
        if not isinstance(self._nets4, NetIndex):
            self._nets4 = NetIndex(self._nets4, self._final)
        return self._nets4

    def name_hits(self, name: str) -> list[int]:
        """Rules with a name pattern (exact or ``.domain``) that ``name`` matches."""
        low = name.lower() if name.isascii() else fold(name)
        out = list(self.names.get(low, ()))
        if self.domains and "." in low:
            for s in _suffixes(low):
                out += self.domains.get(s, ())
        return out


def _add(table: dict[_K, list[int]], key: _K, pos: int, final: Container[int]) -> None:
    hits = table.setdefault(key, [])
    if not hits or (hits[-1] != pos and hits[-1] not in final):
        hits.append(pos)


@lru_cache(maxsize=1 << 16)  # every view of a file asks again for the same patterns
def _plain_span(kind: str, text: str) -> tuple[int, int] | None:
    """The range an exact address or a prefix covers among dotted-quad clients."""
    if kind == "a":
        value = canonical4(text)
        return None if value is None else (value, value)
    if kind == "p":
        return _prefix_range(text)
    return None


class _Host(Protocol):
    """What the index asks of a client (see evaluation.HostInfo)."""

    def canon4(self) -> int | None: ...
    def key(self) -> str: ...
    def ip4(self) -> int | None: ...
    def ip6(self) -> int | None: ...
