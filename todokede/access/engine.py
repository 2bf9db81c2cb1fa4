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
from todokede.access.compiled import Rule, Table
from todokede.access.options import Option
from todokede.access.patterns import UNKNOWN, FileList, dot_quad, fold, known, parse_ip6
from todokede.access.resolve import Resolver, SystemResolver, verify_name
from todokede.access.table import RawWarning

Access = Literal["granted", "denied", "delegated"]
TABLES = ("hosts.allow", "hosts.deny")


@dataclass(frozen=True, slots=True)
class Request:
    """One connection to decide on. ``client_name=None`` means: look the name up (with
    the reverse+forward check) only if a rule needs it; ``"unknown"`` means it is unknown.
    Ports are optional (Debian's numeric daemon patterns and ``%r``/``%R`` use them)."""

    daemon: str
    client_addr: str | None
    client_name: str | None = None
    client_user: str | None = None
    server_addr: str | None = None
    server_name: str | None = None
    pid: int | None = None
    client_port: int | None = None
    server_port: int | None = None


@dataclass(frozen=True, slots=True)
class Match:
    file: str  # "hosts.allow" or "hosts.deny"
    line: int


@dataclass(frozen=True)
class Decision:
    """The verdict. ``warnings`` holds libwrap's own lines, ``warning: ...`` and
    ``error: ...``; ``trace`` is everything tcpdmatch would print, in order, as
    (kind, text) with kind one of matched, option, warning, error, banner."""

    access: Access
    matched: Match | None
    options: list[Option]
    warnings: list[str]
    trace: list[tuple[str, str]] = field(default_factory=list)

    @property
    def granted(self) -> bool:
        return self.access != "denied"


# --- the evaluation of one request --------------------------------------------------------


class _Host:
    """libwrap's host_info: address and name, the name looked up lazily."""

    __slots__ = ("_addr", "_ip4", "_ip6", "_key", "_name", "_port", "_text", "ev")

    def __init__(self, ev: _Eval, addr: str | None, name: str | None, port: int | None) -> None:
        self.ev = ev
        self._text = UNKNOWN if addr is None or addr == "" else addr
        if addr is not None and addr[:7].lower() == "::ffff:" and "." in addr:
            # Debian matches IPv4-mapped addresses as IPv4; %a still shows them as given
            self._addr = addr[7:]
        else:
            self._addr = self._text
        self._name = name
        self._port = port
        self._key: str | None = None
        self._ip4: int | bool | None = False
        self._ip6: int | bool | None = False

    def addr(self) -> str:
        return self._addr

    def key(self) -> str:
        """The address as the indexes compare it (case-folded)."""
        if self._key is None:
            self._key = self._addr.lower() if self._addr.isascii() else fold(self._addr)
        return self._key

    def name(self) -> str:
        if self._name is None:
            if fold(self._addr) == UNKNOWN:
                self._name = UNKNOWN
            else:
                self._name, warnings = verify_name(self.ev.resolver, self._addr)
                for w in warnings:
                    self.ev.warn(w)
        return self._name

    def text(self) -> str:
        """The address as given (what %a and %h show)."""
        return self._text

    def hostinfo(self) -> str:
        """eval_hostinfo(): the name if already known, else the address (no lookup)."""
        if self._name is None:
            return self._text
        return self._name if known(self._name) else self._text

    def ip4(self) -> int | None:
        if self._ip4 is False:
            self._ip4 = dot_quad(self._addr)
        return self._ip4  # type: ignore[return-value,unused-ignore]

    def ip6(self) -> int | None:
        if self._ip6 is False:
            self._ip6 = parse_ip6(self._addr.split("%", 1)[0])
        return self._ip6  # type: ignore[return-value,unused-ignore]

    def port(self) -> int | None:
        if fold(self._addr) == UNKNOWN:
            return None
        return self._port if self._port is not None else None

    def warn(self, message: str) -> None:
        self.ev.warn(message)


class _Eval:
    __slots__ = ("_daemon", "_server", "client", "context", "events", "req", "resolver")

    def __init__(self, req: Request, resolver: Resolver) -> None:
        self.req = req
        self.resolver = resolver
        self._daemon = req.daemon
        self.events: list[tuple[tuple[int, int], str, str]] = []
        # (table index, entry position, file label, line) of the rule being evaluated
        self.context: tuple[int, int, str, int] | None = None
        self.client = _Host(self, req.client_addr, req.client_name, req.client_port)
        self._server: _Host | None = None

    @property
    def server(self) -> _Host:
        if self._server is None:  # most rules never look at the server end
            r = self.req
            self._server = _Host(self, r.server_addr, r.server_name, r.server_port)
        return self._server

    def daemon(self) -> str:
        return self._daemon

    def user(self) -> str:
        return self.req.client_user or UNKNOWN

    def warn(self, message: str) -> None:
        if self.context is None:
            self.events.append(((-1, 0), "warning", message))
        else:
            t_index, pos, label, line = self.context
            self.events.append(((t_index, pos), "warning", f"{label}, line {line}: {message}"))

    def expansion(self, letter: str) -> str | None:
        c, s = self.client, self.server
        if letter == "a":
            return c.text()
        if letter == "A":
            return s.text()
        if letter == "c":
            user = self.user()
            return f"{user}@{c.hostinfo()}" if fold(user) != UNKNOWN else c.hostinfo()
        if letter == "d":
            return self._daemon
        if letter == "h":
            return c.hostinfo()
        if letter == "H":
            return s.hostinfo()
        if letter == "n":
            return c.name()
        if letter == "N":
            return s.name()
        if letter == "p":
            return str(self.req.pid if self.req.pid is not None else os.getpid())
        if letter == "r":
            return str(self.req.client_port or 0)
        if letter == "R":
            return str(self.req.server_port or 0)
        if letter == "s":
            host = s.hostinfo()
            return f"{self._daemon}@{host}" if fold(host) != UNKNOWN else self._daemon
        if letter == "u":
            return self.user()
        return None


def expand_percent(
    template: str,
    request: Request,
    *,
    resolver: Resolver | None = None,
    warnings: list[str] | None = None,
) -> str:
    """libwrap's %-expansion of ``template`` for ``request`` (see hosts_access(5)).

    ``%n``/``%N`` look the name up (reverse+forward) through ``resolver``; unknown
    ``%x`` sequences expand to nothing and are reported in ``warnings``.
    """
    ev = _Eval(request, resolver if resolver is not None else SystemResolver())
    return opts.percent_x(template, ev, warnings)


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
    ) -> None:
        self.rules_dir = Path(rules_dir)
        self.resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self.full_paths = full_paths
        self.recheck = recheck
        self._lock = threading.Lock()
        self._checked = 0.0
        self.tables: tuple[Table, Table]
        self.files: dict[str, FileList]
        self._signatures: dict[str, Signature]
        self._build()

    @classmethod
    def load(
        cls,
        rules_dir: Path,
        *,
        resolver: Resolver | None = None,
        full_paths: bool = False,
        recheck: float = 1.0,
    ) -> Rules:
        """Read and compile ``rules_dir``/hosts.allow and hosts.deny (missing = empty).

        A bad line never raises: it warns (with file and line) as libwrap does.
        ``full_paths`` names files by full path in warnings (as tcpd logs them);
        ``decide`` checks the files for changes at most every ``recheck`` seconds.
        """
        return cls(rules_dir, resolver, full_paths=full_paths, recheck=recheck)

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
        self._checked = time.monotonic()

    def reload_if_changed(self) -> bool:
        """Re-read the files if any of them (or a ``/file`` list) changed. Cheap: stat()s."""
        self._checked = time.monotonic()
        if all(_signature(p) == sig for p, sig in self._signatures.items()):
            return False
        with self._lock:
            self._build()
        return True

    def decide(self, request: Request, *, dry_run: bool = False) -> Decision:
        """hosts_access(): the verdict for one request.

        ``dry_run=True`` gives tcpdmatch's view where it differs from a live tcpd (the
        ``user`` option fails in a dry run on Debian).
        """
        if self.recheck >= 0 and time.monotonic() - self._checked >= self.recheck:
            self.reload_if_changed()
        ev = _Eval(request, self.resolver)
        trace_tail: list[tuple[str, str]] = []
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
            rule = table.entries[hit]
            assert isinstance(rule, Rule)
            matched = Match(table.name, rule.line)
            trace_tail.append(("matched", f"{table.name} line {rule.line}"))
            access = "granted" if t_index == 0 else "denied"
            if rule.raw.options is not None:
                ev.context = (t_index, hit, table.label, rule.line)
                outcome = opts.process(rule.raw.options, ev, dry_run=dry_run)
                prefix = f"{table.label}, line {rule.line}: "
                for kind, text in outcome.events:
                    if kind in ("warning", "error"):
                        text = prefix + text
                    trace_tail.append((kind, text))
                options = outcome.options
                if outcome.verdict == "allow":
                    access = "granted"
                elif outcome.verdict in ("deny", "error"):
                    access = "denied"
                elif outcome.verdict == "twist":
                    access = "delegated"
            break
        if ev.events:
            events = sorted(ev.events, key=lambda e: e[0])
            trace = [(kind, text) for _, kind, text in events] + trace_tail
        else:
            trace = trace_tail
        warnings = [f"{k}: {t}" for k, t in trace if k == "warning" or k == "error"]
        return Decision(access, matched, options, warnings, trace)

    def _scan(self, t_index: int, table: Table, ev: _Eval) -> int | None:
        """Position of the first matching rule, -1 for a fatal line, None for no match.
        Scan warnings of the lines passed over are added to the evaluation's events."""
        entries = table.entries
        found: int | None = None
        for pos in table.candidates(ev):
            if pos >= table.stop:
                break
            rule = entries[pos]
            assert isinstance(rule, Rule)
            ev.context = (t_index, pos, table.label, rule.line)  # formatted only if needed
            if rule.keys is not None:
                ok = rule.daemon_match(ev)  # an index hit: the client list matches
            elif rule.daemon_only:
                ok = rule.client_match(ev)  # pre-filtered on the daemon already
            else:
                ok = rule.daemon_match(ev) and rule.client_match(ev)
            if ok:
                found = pos
                break
        ev.context = None
        end = found if found is not None else table.stop
        for wpos in table.warnings:
            if wpos > end or (wpos == end and found is not None):
                break
            w = entries[wpos]
            assert isinstance(w, RawWarning)
            ev.events.append(
                ((t_index, wpos), "warning", f"{table.label}, line {w.line}: {w.message}")
            )
            if w.fatal:
                ev.events.append(
                    (
                        (t_index, wpos),
                        "warning",
                        f"{table.label}, line {w.line}: all the subsequent rules will be ignored",
                    )
                )
                return -1
        return found
