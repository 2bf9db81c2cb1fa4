"""The decision engine: hosts.allow, then hosts.deny, first match wins -- as libwrap.

Files are parsed and every pattern compiled once, at load; a decision then only walks the
rules that can still match (see compiled.py for the indexes). Files are re-read only when
their inode, size or mtime changes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from todokede.access import options as opts
from todokede.access.compiled import ADDRESS, NAME, TABLES, Fixed, Match, Rule, Table
from todokede.access.evaluation import AclExec, Evaluation, Ident, Request, expand_percent
from todokede.access.index import canonical4, chain_match, plain6
from todokede.access.options import Option
from todokede.access.patterns import UNKNOWN, FileList, fold, known
from todokede.access.resolve import Resolver, SystemResolver
from todokede.access.table import RawWarning

__all__ = [
    "AclExec",
    "Decision",
    "Ident",
    "Match",
    "Request",
    "Rules",
    "expand_percent",
]

Access = Literal["granted", "denied", "delegated"]


@dataclass(frozen=True)
class Decision:
    """The verdict. ``warnings`` holds libwrap's own lines, ``warning: ...`` and
    ``error: ...``; ``trace`` is everything tcpdmatch would print, in order, as
    (kind, text) with kind one of matched, option, warning, error, banner, and info
    (``aclexec returned 1``, which tcpd logs at daemon.info).

    ``options`` are the options of every rule whose options were processed, in order
    (more than one rule only when a failed ``aclexec`` made libwrap go on): the k-th
    ``option`` entry of ``trace`` is ``options[k]``. ``client`` is the client as tcpd
    names it in its log (libwrap's ``eval_client()``): ``user@host`` when the user is
    known, host being the verified name when a rule looked it up, else the address.
    ``user`` is the RFC 931 user as the decision left it (None: not known)."""

    access: Access
    matched: Match | None
    options: list[Option]
    warnings: list[str]
    trace: list[tuple[str, str]] = field(default_factory=list)
    client: str = ""
    user: str | None = None

    @property
    def granted(self) -> bool:
        return self.access != "denied"


_new = object.__new__


def _decision(
    access: Access,
    matched: Match | None,
    options: list[Option],
    warnings: list[str],
    trace: list[tuple[str, str]],
    client: str,
    user: str | None,
) -> Decision:
    """``Decision(...)`` without the frozen dataclass's per-field ``object.__setattr__``
    calls: a decision is made per connection, and they are a measurable part of it."""
    d = _new(Decision)
    d.__dict__.update(
        access=access,
        matched=matched,
        options=options,
        warnings=warnings,
        trace=trace,
        client=client,
        user=user,
    )
    return d


# --- the rule set -------------------------------------------------------------------------


Signature = tuple[int, int, int] | None


def _signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Rules:
    """hosts.allow and hosts.deny of one directory, compiled.

    >>> rules = Rules.load(Path("/etc"))               # doctest: +SKIP
    >>> rules.decide(Request("sshd", "192.0.2.7")).access  # doctest: +SKIP
    'denied'
    """

    def __init__(
        self,
        rules_dir: Path,
        resolver: Resolver | None = None,
        *,
        full_paths: bool = False,
        recheck: float = 1.0,
        index: bool = True,
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.index = index
        self.resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self.full_paths = full_paths
        self.recheck = recheck
        self._lock = threading.Lock()
        self._checked = 0.0
        self.tables: tuple[Table, Table]
        self.files: dict[str, FileList]
        self._signatures: dict[str, Signature]
        self._watch: list[tuple[str, Signature]]
        self._build()

    @classmethod
    def load(
        cls,
        rules_dir: Path,
        *,
        resolver: Resolver | None = None,
        full_paths: bool = False,
        recheck: float = 1.0,
        index: bool = True,
    ) -> Rules:
        """Read and compile ``rules_dir``/hosts.allow and hosts.deny (missing = empty).

        A bad line never raises: it warns (with file and line) as libwrap does.
        ``full_paths`` names files by full path in warnings (as tcpd logs them);
        ``decide`` checks the files for changes at most every ``recheck`` seconds.
        ``index=False`` walks every rule in order, as libwrap does: the reference the
        indexes are tested against, never faster.
        """
        return cls(rules_dir, resolver, full_paths=full_paths, recheck=recheck, index=index)

    def path(self, name: str) -> Path:
        return self.rules_dir / name

    def _build(self) -> None:
        files: dict[str, FileList] = {}
        signatures: dict[str, Signature] = {}
        tables = []
        for name in TABLES:
            path = str(self.path(name))
            signatures[path] = _signature(path)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                data = b""  # libwrap: a table that cannot be opened is empty
            label = path if self.full_paths else name
            tables.append(Table.build(name, label, data, files))
        for p in files:
            signatures[p] = _signature(p)
        self.tables = (tables[0], tables[1])
        self.files = files
        self._signatures = signatures
        self._watch = list(signatures.items())
        self._checked = time.monotonic()

    def reload_if_changed(self) -> bool:
        """Re-read the files if any of them (or a ``/file`` list) changed. Cheap: stat()s."""
        self._checked = time.monotonic()
        stat = os.stat
        # A plain loop over (path, signature): this runs before every decision of a live
        # wrapper, so it is kept to the stat() calls themselves.
        for path, sig in self._watch:
            try:
                st = stat(path)
            except OSError:
                if sig is None:
                    continue
                break
            if sig is None or st.st_mtime_ns != sig[2] or st.st_size != sig[1]:
                break
            if st.st_ino != sig[0]:
                break
        else:
            return False
        with self._lock:
            self._build()
        return True

    def decide(
        self,
        request: Request,
        *,
        dry_run: bool = False,
        aclexec: AclExec | None = None,
        ident: Ident | None = None,
    ) -> Decision:
        """hosts_access(): the verdict for one request.

        ``dry_run=True`` gives tcpdmatch's view where it differs from a live tcpd (the
        ``user`` option fails in a dry run on Debian; ``aclexec`` is not run).

        ``aclexec`` runs Debian's ``aclexec`` commands in the middle of matching, as tcpd
        does: a command that fails makes its rule count as not matched (libwrap then
        goes on with hosts.deny) and, as in libwrap, every later matched rule that has
        options too, until an ``aclexec`` succeeds. Without it (or in a dry run) an
        ``aclexec`` option is only reported. ``ident`` looks the RFC 931 user up, lazily:
        only when a ``user@host`` pattern, ``%u`` or the ``rfc931`` option needs it.
        """
        quick = self._quick(request)
        if quick is not None:
            return quick
        if self.recheck >= 0 and time.monotonic() - self._checked >= self.recheck:
            self.reload_if_changed()
        ev = Evaluation(request, self.resolver, None if dry_run else aclexec, ident)
        tail: list[tuple[tuple[int, int, int], str, str]] = []
        access: Access = "granted"
        matched: Match | None = None
        options: list[Option] = []
        for t_index, table in enumerate(self.tables):
            hit = self._scan(t_index, table, ev)
            if hit is None:
                continue
            if hit == -1:  # the scan hit a fatal line
                if t_index == 1:
                    access = "denied"
                    break
                continue
            rule = table.rule(hit)
            key = (t_index, hit, 1)  # after the scan's own events for this rule
            matched = rule.match
            tail.append((key, "matched", rule.matched_text))
            access = "granted" if t_index == 0 else "denied"
            if rule.raw.options is not None:
                ev.context = (t_index, hit, table.label, rule.line)
                outcome = opts.process(rule.raw.options, ev, dry_run=dry_run)
                prefix = f"{table.label}, line {rule.line}: "
                for kind, text in outcome.events:
                    if kind in ("warning", "error"):
                        text = prefix + text
                    tail.append((key, kind, text))
                options += outcome.options
                if outcome.verdict == "allow":
                    access = "granted"
                elif outcome.verdict in ("deny", "error"):
                    access = "denied"
                elif outcome.verdict == "twist":
                    access = "delegated"
                elif ev.aclexec_failed:
                    # Debian: the rule counts as not matched; hosts.deny not matching
                    # means access is granted.
                    tail.append((key, "info", "aclexec returned 1"))
                    matched = None
                    access = "granted"
                    continue
            break
        ev.context = None
        events = sorted(ev.events + tail, key=lambda e: e[0]) if ev.events else tail
        trace = [(kind, text) for _, kind, text in events]
        warnings = [f"{k}: {t}" for k, t in trace if k == "warning" or k == "error"]
        return _decision(access, matched, options, warnings, trace, ev.label(), ev.known_user())

    def _quick(self, request: Request) -> Decision | None:
        """decide() without an evaluation when the indexes alone decide (see plain)."""
        if not request.client_addr:
            return None
        found = self.plain(request.daemon, request.client_addr, request.client_name)
        if found is None:
            return None
        rule, fixed = found
        client, user = _label(request)
        if rule is None or fixed is None:
            return _decision("granted", None, [], [], [], client, user)
        options, warnings, trace = list(fixed.options), list(fixed.warnings), list(fixed.trace)
        return _decision(fixed.access, rule.match, options, warnings, trace, client, user)

    def plain(
        self, daemon: str, addr: str, name: str | None = UNKNOWN
    ) -> tuple[Rule, Fixed] | tuple[None, None] | None:
        """The rule that decides a client given as a plain address (a dotted quad, an
        IPv4-mapped one, or IPv6 without a dot) and its outcome, or (None, None) when no
        rule matches (granted) -- when that takes no evaluation: the client's candidates
        are rules of addresses and networks only (EXCEPT parts too) whose outcome is the
        same for every request, with nothing to look up or warn about before the one that
        matches. None: not that simple; ``decide`` has the answer.

        ``name`` is the client's name as in :class:`Request` (None: not looked up yet)."""
        if self.recheck >= 0 and time.monotonic() - self._checked >= self.recheck:
            self.reload_if_changed()
        if not self.index:
            return None
        plain = canonical4(addr)
        if plain is None and addr[:7].lower() == "::ffff:" and "." in addr:
            plain = canonical4(addr[7:])  # matched as IPv4, as HostInfo does
        six = plain is None
        value = plain6(addr) if six else plain
        if value is None:
            return None
        for table in self.tables:
            view = table.views.get(daemon)
            if view is None or not view.simple:
                return None
            index = view.index
            limit = view.limit
            if index.has_names:
                if name is None:
                    return None
                limit = view.name_limit(name)
            for pos in index.nets6.find(value) if six else index.plain4.find(value):
                rule = table.entries[pos]
                assert not isinstance(rule, RawWarning)
                chain = rule.chain6 if six else rule.chain4
                if pos >= limit or chain is None or rule.kind != ADDRESS:
                    return None
                if chain and chain_match(chain, 0, value):
                    continue  # its EXCEPT part holds the client
                fixed = table.fixed[pos]
                return None if fixed is None else (rule, fixed)
            if limit < table.stop or table.warnings:
                return None
        return None, None

    def _scan(self, t_index: int, table: Table, ev: Evaluation) -> int | None:
        """Position of the first matching rule, -1 for a fatal line, None for no match.
        Scan warnings of the lines passed over are added to the evaluation's events."""
        found = self._walk(t_index, table, ev) if self.index else _linear(t_index, table, ev)
        ev.context = None
        if not table.warnings:
            return found
        entries = table.entries
        end = found if found is not None else table.stop
        for wpos in table.warnings:
            if wpos > end or (wpos == end and found is not None):
                break
            w = entries[wpos]
            assert isinstance(w, RawWarning)
            ev.events.append(
                ((t_index, wpos, 0), "warning", f"{table.label}, line {w.line}: {w.message}")
            )
            if w.fatal:
                ev.events.append(
                    (
                        (t_index, wpos, 0),
                        "warning",
                        f"{table.label}, line {w.line}: all the subsequent rules will be ignored",
                    )
                )
                return -1
        return found

    @staticmethod
    def _walk(t_index: int, table: Table, ev: Evaluation) -> int | None:
        """The first match among the candidates the indexes give, in rule order."""
        client = ev.client
        view = table.view(ev)
        pending = client.looked_up() is None and bool(view.names)
        cands = table.candidates(ev, view, client.looked_up())
        entries = table.entries
        last = -1
        i = 0
        while i < len(cands):
            pos = cands[i]
            i += 1
            if pos == last:
                continue
            last = pos
            rule = entries[pos]
            assert not isinstance(rule, RawWarning)
            kind = rule.kind
            if kind == ADDRESS and len(rule.clients) == 1:
                return pos  # an index hit is a match, with nothing to look up
            ev.context = (t_index, pos, table.label, rule.line)  # formatted only if needed
            if kind == ADDRESS:
                if rule.except_match(ev):
                    return pos
            elif kind == NAME or rule.daemon_only:
                if rule.client_match(ev):
                    return pos
            elif rule.daemon_match(ev) and rule.client_match(ev):
                return pos
            name = client.looked_up() if pending else None
            if name is not None:
                # The name is known from here on: the name index finds the rest.
                pending = False
                cands = [p for p in table.candidates(ev, view, name) if p > pos]
                i = 0
        return None


def _label(request: Request) -> tuple[str, str | None]:
    """Decision.client and .user when no name was looked up (see Evaluation.label)."""
    user = request.client_user
    name = request.client_name
    if user is None and (name is None or name == UNKNOWN):  # the usual case, in short
        return request.client_addr or UNKNOWN, None
    host = name if name is not None and known(name) else request.client_addr or UNKNOWN
    if user is None or not user or fold(user) == UNKNOWN:
        return host, None
    return f"{user}@{host}", user


def _linear(t_index: int, table: Table, ev: Evaluation) -> int | None:
    """libwrap's own walk: every rule, in order."""
    for pos in table.positions:
        rule = table.rule(pos)
        ev.context = (t_index, pos, table.label, rule.line)
        if rule.daemon_match(ev) and rule.client_match(ev):
            return pos
    return None
