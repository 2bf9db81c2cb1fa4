"""Rules compiled for fast decisions, and the per-file indexes that skip the rules that
cannot match a request.

Rules whose daemon list looks at the daemon name only are pre-filtered per daemon name;
rules whose client list holds nothing but addresses, address prefixes and networks are
found through a dictionary (one lookup per distinct mask), so a ban list of thousands of
addresses costs a few lookups, not a scan.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from todokede.access.patterns import (
    Compiled,
    Context,
    FileList,
    Key,
    Never,
    client_token,
    daemon_token,
    fold,
)
from todokede.access.table import RawRule, RawWarning, parse_table, tokens

Segments = list[list[Compiled]]


def _compile_list(
    text: str,
    compile_token: Callable[[str, dict[str, FileList]], Compiled],
    files: dict[str, FileList],
) -> tuple[Segments, list[tuple[str, Never]]]:
    segments: Segments = [[]]
    nevers: list[tuple[str, Never]] = []
    for tok in tokens(text):
        if fold(tok) == "except":
            segments.append([])
            continue
        compiled = compile_token(tok, files)
        segments[-1].append(compiled)
        if compiled.never is not None:
            nevers.append((tok, compiled.never))
    return segments, nevers


def _list_match(segments: Segments, i: int, ev: Context) -> bool:
    for c in segments[i]:
        if c.test(ev):
            return i + 1 == len(segments) or not _list_match(segments, i + 1, ev)
    return False


@dataclass
class Rule:
    """One rule of a table, compiled."""

    file: str
    line: int
    raw: RawRule
    daemons: Segments
    clients: Segments
    nevers: list[tuple[str, Never]]
    daemon_only: bool  # the daemon list looks at the daemon name only (cacheable)
    keys: list[Key] | None = None  # the client list is these address-only patterns

    def daemon_match(self, ev: Context) -> bool:
        return _list_match(self.daemons, 0, ev)

    def client_match(self, ev: Context) -> bool:
        return _list_match(self.clients, 0, ev)


def compile_rule(file: str, raw: RawRule, files: dict[str, FileList]) -> Rule:
    daemons, n1 = _compile_list(raw.daemons, daemon_token, files)
    clients, n2 = _compile_list(raw.clients, client_token, files)
    daemon_only = not any(c.needs_host for seg in daemons for c in seg)
    rule = Rule(file, raw.line, raw, daemons, clients, n1 + n2, daemon_only)
    flat = clients[0] if len(clients) == 1 else []
    if daemon_only and flat and all(c.key is not None for c in flat):
        rule.keys = [c.key for c in flat if c.key is not None and c.key[0] != "x"]
    return rule


@dataclass
class Table:
    """One file: its rules and scan warnings in order, with lookup indexes."""

    name: str  # hosts.allow / hosts.deny
    label: str  # how warnings name it (tcpdmatch: relative; tcpd: the full path)
    entries: list[Rule | RawWarning]
    stop: int  # position of the fatal warning, or len(entries)
    warnings: list[int]  # positions of RawWarning entries
    general: list[int]  # rules that are not found through the address index
    by_key: dict[Key, list[int]] = field(default_factory=dict)
    masks4: list[int] = field(default_factory=list)
    masks6: list[int] = field(default_factory=list)
    prefixes: list[int] = field(default_factory=list)  # lengths of the prefix patterns
    _per_daemon: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, label: str, data: bytes, files: dict[str, FileList]) -> Table:
        entries: list[Rule | RawWarning] = []
        stop = -1
        for raw in parse_table(data):
            if isinstance(raw, RawWarning):
                if raw.fatal:
                    stop = len(entries)
                entries.append(raw)
            else:
                entries.append(compile_rule(name, raw, files))
        table = cls(name, label, entries, stop if stop >= 0 else len(entries), [], [])
        for pos, e in enumerate(entries):
            if isinstance(e, RawWarning):
                table.warnings.append(pos)
            elif e.keys is not None:
                for key in e.keys:
                    hits = table.by_key.setdefault(key, [])
                    if not hits or hits[-1] != pos:
                        hits.append(pos)
                    kind, arg = key[0], key[1] if len(key) > 1 else None
                    if kind == "m" and isinstance(arg, int) and arg not in table.masks4:
                        table.masks4.append(arg)
                    elif kind == "6" and isinstance(arg, int) and arg not in table.masks6:
                        table.masks6.append(arg)
                    elif kind == "p" and len(str(arg)) not in table.prefixes:
                        table.prefixes.append(len(str(arg)))
            else:
                table.general.append(pos)
        return table

    def rules(self) -> Iterator[Rule]:
        return (e for e in self.entries if isinstance(e, Rule))

    def candidates(self, ev: Context) -> Iterator[int] | list[int]:
        daemon = ev.daemon()  # cached as given: the filter's answer is the same
        general = self._per_daemon.get(daemon)
        if general is None:
            general = [
                p
                for p in self.general
                if not self.entries[p].daemon_only  # type: ignore[union-attr]
                or self.entries[p].daemon_match(ev)  # type: ignore[union-attr]
            ]
            if len(self._per_daemon) > 4096:
                self._per_daemon.clear()
            self._per_daemon[daemon] = general
        if not self.by_key:
            return general
        by_key = self.by_key
        hits: list[int] = []
        addr = ev.client.key()
        hits += by_key.get(("a", addr), ())
        for n in self.prefixes:
            if addr[n - 1 : n] == ".":
                hits += by_key.get(("p", addr[:n]), ())
        if self.masks4:
            a4 = ev.client.ip4()
            if a4 is not None:
                for mask in self.masks4:
                    hits += by_key.get(("m", mask, a4 & mask), ())
        if self.masks6:
            a6 = ev.client.ip6()
            if a6 is not None:
                for mask in self.masks6:
                    hits += by_key.get(("6", mask, a6 & mask), ())
        if not hits:
            return general
        if len(hits) > 1:
            hits = sorted(set(hits))
        if len(general) < 64:
            return sorted(general + hits)
        return heapq.merge(general, hits)
