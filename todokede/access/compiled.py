"""Rules compiled for fast decisions, and the per-file indexes that skip the rules that
cannot match a request.

Every rule falls in one of three kinds by the first part of its client list (before any
EXCEPT), when its daemon list looks at the daemon name only:

- ADDRESS: ``ALL``, addresses, prefixes and networks only. Found through the address index; a hit
  is a match of that part, so only the EXCEPT part (if any) is evaluated.
- NAME: also host names and ``.domain`` suffixes. Found through the address index and,
  once the client's name is known, through the name index; a hit is evaluated whole.
  While the name is not known yet, every such rule stays a candidate: the first one
  evaluated looks the name up, at the rule where libwrap looks it up.
- GENERAL: anything else (``ALL``, ``KNOWN``, wildcards, ``/file`` lists, ``user@host``,
  ``daemon@host``, ...): always a candidate.

Daemon lists are pre-filtered per daemon name (a view, built on first use).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from todokede.access.index import ClientIndex, key_nets
from todokede.access.options import Option, static_outcome
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
GENERAL, ADDRESS, NAME = 0, 1, 2
TABLES = ("hosts.allow", "hosts.deny")
_ADDRESS_KINDS = frozenset("*apsm6x")
_VIEWS_MAX = 4096  # daemon names seen; beyond that the views start over


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


@dataclass(frozen=True, slots=True)
class Match:
    file: str  # "hosts.allow" or "hosts.deny"
    line: int


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
    kind: int = GENERAL
    keys: list[Key] = field(default_factory=list)  # what the indexes find it by
    # The EXCEPT parts as (mask, net) pairs, for a dotted-quad client and for an IPv6 one
    # (index.key_nets); None when a part holds another kind of pattern.
    chain4: list[list[tuple[int, int]]] | None = None
    chain6: list[list[tuple[int, int]]] | None = None
    match: Match = field(init=False)  # shared by every decision it makes
    matched_text: str = field(init=False)  # its ``matched`` trace entry

    def __post_init__(self) -> None:
        self.match = Match(self.file, self.line)
        self.matched_text = f"{self.file} line {self.line}"

    def daemon_match(self, ev: Context) -> bool:
        return _list_match(self.daemons, 0, ev)

    def client_match(self, ev: Context) -> bool:
        return _list_match(self.clients, 0, ev)

    def except_match(self, ev: Context) -> bool:
        """The client list, given that its first part matched (an ADDRESS index hit)."""
        return len(self.clients) == 1 or not _list_match(self.clients, 1, ev)


DaemonLists = dict[str, tuple[Segments, list[tuple[str, Never]]]]


def compile_rule(
    file: str, raw: RawRule, files: dict[str, FileList], daemon_lists: DaemonLists | None = None
) -> Rule:
    """``daemon_lists``: lists compiled already, by text (a file repeats a few of them;
    compiled patterns are never changed, so rules can share them)."""
    daemon_lists = {} if daemon_lists is None else daemon_lists
    compiled = daemon_lists.get(raw.daemons)
    if compiled is None:
        compiled = daemon_lists[raw.daemons] = _compile_list(raw.daemons, daemon_token, files)
    daemons, n1 = compiled
    clients, n2 = _compile_list(raw.clients, client_token, files)
    daemon_only = not any(c.needs_host for seg in daemons for c in seg)
    rule = Rule(file, raw.line, raw, daemons, clients, n1 + n2, daemon_only)
    first = clients[0]
    if daemon_only and first and all(c.key is not None for c in first):
        keys = [c.key for c in first if c.key is not None]
        rule.keys = [k for k in keys if k[0] != "x"]
        rule.kind = ADDRESS if all(k[0] in _ADDRESS_KINDS for k in keys) else NAME
    if rule.kind == ADDRESS:
        rule.chain4, rule.chain6 = (_chain(clients[1:], six) for six in (False, True))
    return rule


def _chain(segments: Segments, six: bool) -> list[list[tuple[int, int]]] | None:
    chain = [key_nets((c.key for c in seg), six) for seg in segments]
    return None if any(nets is None for nets in chain) else chain  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)  # compared and hashed as the object (a cache key)
class Fixed:
    """What a rule decides when it matches, if that is the same for every request (no
    options, or only options that depend on nothing else: ``allow``, ``deny``, ...)."""

    access: Literal["granted", "denied"]
    options: tuple[Option, ...]
    trace: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def fixed_outcome(rule: Rule, table: str, label: str) -> Fixed | None:
    access: Literal["granted", "denied"] = "granted" if table == TABLES[0] else "denied"
    matched = ("matched", rule.matched_text)
    if rule.raw.options is None:
        return Fixed(access, (), (matched,), ())
    outcome = static_outcome(rule.raw.options)
    if outcome is None:
        return None
    if outcome.verdict == "allow":
        access = "granted"
    elif outcome.verdict is not None:  # deny or an error
        access = "denied"
    prefix = f"{label}, line {rule.line}: "
    trace = [matched]
    for kind, text in outcome.events:
        trace.append((kind, prefix + text if kind in ("warning", "error") else text))
    warnings = tuple(f"{k}: {t}" for k, t in trace if k in ("warning", "error"))
    return Fixed(access, tuple(outcome.options), tuple(trace), warnings)


@dataclass
class View:
    """A table as the daemon names that pass the same daemon lists see it: only the
    rules those lists let through, indexed."""

    index: ClientIndex  # the ADDRESS and NAME rules' client patterns
    general: list[int]  # GENERAL rules to evaluate, in order
    names: list[int]  # NAME rules, in order (candidates while the name is not known)
    # The first position that needs an evaluation or a warning, whatever the client:
    # a GENERAL rule, a scan warning, or the end of the scan.
    limit: int
    simple: bool = field(init=False)  # a plain address's candidates are plain4's/nets6's
    _by_name: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.simple = not (self.index.odd_masks or self.index.suffix)

    def name_limit(self, name: str) -> int:
        """``limit``, or the first NAME rule ``name`` can match if that comes earlier."""
        limit = self._by_name.get(name)
        if limit is None:
            if len(self._by_name) >= _VIEWS_MAX:
                self._by_name.clear()
            limit = self._by_name[name] = min([self.limit, *self.index.name_hits(name)])
        return limit


@dataclass
class Table:
    """One file: its rules and scan warnings in order, with lookup indexes."""

    name: str  # hosts.allow / hosts.deny
    label: str  # how warnings name it (tcpdmatch: relative; tcpd: the full path)
    entries: list[Rule | RawWarning]
    stop: int  # position of the fatal warning, or len(entries)
    warnings: list[int]  # positions of RawWarning entries
    positions: list[int]  # positions of the rules before ``stop``, in order
    fixed: dict[int, Fixed | None] = field(default_factory=dict)  # by position
    views: dict[str, View] = field(default_factory=dict)  # by daemon name, once built
    _shared: dict[frozenset[str], View] = field(default_factory=dict)  # by daemon lists

    @classmethod
    def build(cls, name: str, label: str, data: bytes, files: dict[str, FileList]) -> Table:
        entries: list[Rule | RawWarning] = []
        stop = -1
        daemon_lists: DaemonLists = {}
        for raw in parse_table(data):
            if isinstance(raw, RawWarning):
                if raw.fatal:
                    stop = len(entries)
                entries.append(raw)
            else:
                entries.append(compile_rule(name, raw, files, daemon_lists))
        stop = stop if stop >= 0 else len(entries)
        warnings = [p for p, e in enumerate(entries) if isinstance(e, RawWarning)]
        positions = [p for p, e in enumerate(entries[:stop]) if isinstance(e, Rule)]
        table = cls(name, label, entries, stop, warnings, positions)
        for pos in positions:
            table.fixed[pos] = fixed_outcome(table.rule(pos), name, label)
        return table

    def rule(self, pos: int) -> Rule:
        entry = self.entries[pos]
        assert isinstance(entry, Rule)
        return entry

    def rules(self) -> Iterator[Rule]:
        return (e for e in self.entries if isinstance(e, Rule))

    def view(self, ev: Context) -> View:
        view = self.views.get(ev.daemon())
        if view is None:
            if len(self.views) >= _VIEWS_MAX:
                self.views.clear()
            view = self.views[ev.daemon()] = self._build_view(ev)
        return view

    def _build_view(self, ev: Context) -> View:
        verdicts: dict[str, bool] = {}  # one evaluation per distinct daemon list
        for pos in self.positions:
            rule = self.rule(pos)
            if rule.daemon_only and rule.raw.daemons not in verdicts:
                verdicts[rule.raw.daemons] = rule.daemon_match(ev)
        passing = frozenset(text for text, ok in verdicts.items() if ok)
        view = self._shared.get(passing)
        if view is not None:
            return view
        general: list[int] = []
        names: list[int] = []
        keyed: list[tuple[int, Key]] = []
        final: set[int] = set()
        for pos in self.positions:
            rule = self.rule(pos)
            if rule.daemon_only and rule.raw.daemons not in passing:
                continue
            if rule.kind == GENERAL:
                general.append(pos)
                continue
            if rule.kind == NAME:
                names.append(pos)
            elif len(rule.clients) == 1:
                final.add(pos)
            for key in rule.keys:
                keyed.append((pos, key))
        limit = min([self.stop, *general[:1], *self.warnings[:1]])
        view = self._shared[passing] = View(ClientIndex(keyed, final), general, names, limit)
        return view

    def candidates(self, ev: Context, view: View, name: str | None) -> list[int]:
        """Positions of the rules that can match, sorted (a position may repeat).
        ``name``: the client's name if already known, else None."""
        index = view.index
        hits = index.address_hits(ev.client)
        if index.has_names:
            hits += view.names if name is None else index.name_hits(name)
        if view.general:
            hits += view.general
        hits.sort()
        return hits
