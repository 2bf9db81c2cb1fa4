"""fail2ban filters as todokede parsers: one filter over the lines of each log it is given.

The filter is read and applied exactly as fail2ban does (see :mod:`todokede.logs.f2b`):
``--filter sshd[mode=aggressive]``, ``--filter /path/NAME.conf``. Each log keeps its own
state (date detection, multi-line buffer, connections), as each file of a jail does.
"""

from __future__ import annotations

import calendar
import datetime
import functools
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from todokede.logs import f2b
from todokede.logs.f2b.matcher import Compiled

_ID_GROUPS = ("mlfid",)


@dataclass
class Failure:
    """A failure in todokede's terms: ``host`` an address when it is one, else a name or
    the filter's failure id; ``ts`` the log's wall clock (seconds, as events carry it)."""

    host: str
    user: str
    ts: int | None = None
    is_address: bool = True
    users: frozenset[str] = frozenset()  # every user the connection tried (F-MLFID)


@dataclass
class Filter:
    """A loaded fail2ban filter: :meth:`feed` its lines, log by log."""

    name: str
    compiled: Compiled
    warnings: list[str] = field(default_factory=list)
    _matchers: dict[str, f2b.Matcher] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, spec: str | Path, dirs: list[Path] | None = None, journal: bool = False
    ) -> Filter:
        """``spec``: a filter file's path or a name in ``dirs`` (default
        /etc/fail2ban/filter.d), with options in brackets. ``journal``: for journal
        entries (the filter's ``logtype`` is then ``journal``, as with fail2ban's systemd
        backend: its lines have no date and a shorter prefix)."""
        compiled = f2b.load(spec, dirs, "journal" if journal else "file")
        warnings = []
        if not compiled.failregex:
            # fail2ban takes such a filter too; it never finds anything
            warnings.append(f"{spec}: the filter has no failregex and matches nothing")
        return cls(compiled.name, compiled, warnings)

    @property
    def stateful(self) -> bool:
        """Whether a line's result depends on lines before it beyond its date (multi-line
        regexes, connections): such a filter needs each log read in one piece."""
        rx = [*self.compiled.failregex, self.compiled.prefregex]
        return self.compiled.maxlines > 1 or any(
            r is not None and r.has_any(_ID_GROUPS) for r in rx
        )

    @property
    def needles(self) -> frozenset[str] | None:
        """Strings of which every line a failregex matches has one (None: any line may
        match, or the filter reads lines together)."""
        if self.compiled.maxlines > 1:
            return None
        out: set[str] = set()
        for rx in self.compiled.failregex:
            if rx.needles is None:
                return None
            out.update(rx.needles)
        return frozenset(out)

    def skip(self, source: str, text: str, count: int) -> bool:
        """Pass over ``count`` lines of ``source`` that have none of the :attr:`needles`
        (``text``: the lines joined by newlines, none empty or a comment, each starting
        with a letter or digit). False, with nothing changed, when they must be fed one by
        one (see :meth:`f2b.Matcher.skip`)."""
        return self._matcher(source).skip(text, count)

    def _matcher(self, source: str) -> f2b.Matcher:
        m = self._matchers.get(source)
        if m is None:
            m = self._matchers[source] = f2b.Matcher(self.compiled)
        return m

    @property
    def journalmatch(self) -> list[str]:
        """The filter's ``journalmatch`` lines (``_SYSTEMD_UNIT=sshd.service + ...``)."""
        return self.compiled.journalmatch

    def reads(self, fields: Mapping[bytes, bytes] | None) -> bool:
        """Whether a journal entry (its ``fields``) is one the filter's ``journalmatch``
        takes, as fail2ban's systemd backend asks the journal: the lines, and the groups
        between ``+`` in a line, are alternatives; in a group, terms of one field are
        alternatives, terms of different fields all hold. No journalmatch: every entry."""
        if not self.journalmatch:
            return True
        have = fields or {}
        for group in self._journal_groups:
            for name, values in group.items():
                if have.get(name) not in values:
                    break
            else:
                return True
        return False

    @functools.cached_property
    def _journal_groups(self) -> list[dict[bytes, frozenset[bytes]]]:
        return [group for line in self.journalmatch for group in _groups(line)]

    def feed(
        self, source: str, line: str, when: tuple[float, datetime.datetime] | None = None
    ) -> list[Failure]:
        """The failures a line of ``source`` makes (usually none or one). ``when``: the
        time known apart from the line (Unix time, wall clock), as for a journal entry,
        whose line is then matched whole, without looking for a date in it.

        As fail2ban-regex reads a log file, comment lines (``#...``) and empty lines are
        passed over: they do not break a multi-line match."""
        if not line or line[0] == "#":
            return []
        m = self._matcher(source)
        stamp = when[1].isoformat() if when is not None else ""
        return [_failure(hit) for hit in m.process(line, when, stamp) if _counts(hit)]

    def match(self, line: str) -> Failure | None:
        """The first failure of one line read on its own."""
        hits = [h for h in f2b.Matcher(self.compiled).process(line) if _counts(h)]
        return _failure(hits[0]) if hits else None

    def __getstate__(self) -> dict[str, object]:
        # a worker's filters start afresh on their byte range
        state = self.__dict__.copy()
        state["_matchers"] = {}
        return state


@functools.lru_cache(maxsize=64)
def _groups(line: str) -> list[dict[bytes, frozenset[bytes]]]:
    """A journalmatch line's groups: field -> the values it may have."""
    out: list[dict[bytes, frozenset[bytes]]] = []
    group: dict[bytes, frozenset[bytes]] = {}
    try:
        terms = shlex.split(line)
    except ValueError:  # an unclosed quote: the words as they are
        terms = line.split()
    for term in [*terms, "+"]:
        if term == "+":
            if group:
                out.append(group)
            group = {}
            continue
        name, _, value = term.partition("=")
        key = name.encode()
        group[key] = group.get(key, frozenset()) | {value.encode()}
    return out


def _counts(hit: f2b.Failure) -> bool:
    # a match marked <F-NOFAIL> is no failure (as fail2ban-regex and fail2ban's tests count)
    return hit.host is not None and not hit.nofail


def _failure(hit: f2b.Failure) -> Failure:
    host = hit.host or ""
    ts = calendar.timegm(hit.wall.timetuple()) if hit.wall is not None else None
    # an address unless an <F-ID> other than the address names the failure
    addr = hit.fields.get("ip4") is not None or hit.fields.get("ip6") is not None
    is_address = addr and "ip" not in hit.fields
    return Failure(host, hit.user, ts, is_address, frozenset(hit.users))
