"""A loaded filter applied to lines, with the state fail2ban keeps between them.

For each line: find and cut out its date (or take the time given, for journal entries),
add it to the buffer of the last ``maxlines`` lines, match ``prefregex`` (its
``<F-CONTENT>`` is then what the failregexes see), then each ``failregex``; a match that an
``ignoreregex`` also matches is dropped. ``<F-MLFID>`` ties the lines of one connection
together: fields gathered on earlier lines stay with it, ``<F-NOFAIL>`` marks a match that
is not a failure by itself (it becomes one when the connection fails later, or tries a
second user), ``<F-MLFGAINED>`` a success that clears what was pending, ``<F-MLFFORGET>``
the end of the connection. The host is what fail2ban reports: an address in its canonical
form (an IPv4-mapped IPv6 address as its IPv4), with ``/N`` when a ``<CIDR>`` narrowed it,
else the host name or the ``<F-ID>`` as written.
"""

from __future__ import annotations

import datetime
import functools
import re
import socket
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from todokede.logs.f2b.dates import DateDetector, Template
from todokede.logs.f2b.regex import Line, Regex, join_lines

_MLFID_MAX = 100
_MLFID_SECONDS = 300
_RECENT = 60  # a line without a date takes the last one seen this recently


@dataclass
class Failure:
    """A failregex match: ``host`` as fail2ban reports it, ``time`` fail2ban's Unix time,
    ``wall`` the log's own clock (None when the line had no usable date)."""

    regex: int
    host: str | None
    time: float | None
    wall: datetime.datetime | None
    fields: dict[str, object] = field(default_factory=dict)

    @property
    def user(self) -> str:
        user = self.fields.get("user")
        return user if isinstance(user, str) else ""

    @property
    def users(self) -> set[str]:
        users = self.fields.get("users")
        return set(users) if isinstance(users, set) else ({self.user} if self.user else set())

    @property
    def attempts(self) -> int:
        matches = self.fields.get("matches")
        return len(matches) if isinstance(matches, list) else 0

    @property
    def nofail(self) -> bool:
        return bool(self.fields.get("nofail"))


@functools.lru_cache(maxsize=4096)  # an attacker's address comes back line after line
def canonical_host(text: str, cidr: int | None = None, family: int | None = None) -> str:
    """An address as fail2ban prints it (text that is no address comes back as is)."""
    families = [family] if family else [socket.AF_INET, socket.AF_INET6]
    for fam in families:
        try:
            packed = socket.inet_pton(fam, text)
        except (OSError, ValueError):
            continue
        if fam == socket.AF_INET:
            value, bits = struct.unpack("!L", packed)[0], 32
        else:
            hi, lo = struct.unpack("!QQ", packed)
            value, bits = (hi << 64) | lo, 128
            if cidr is None and value >> 32 == 0xFFFF:
                fam, value, bits = socket.AF_INET, lo & 0xFFFFFFFF, 32
        plen = bits
        if cidr is not None and cidr >= 0:
            value &= ~((1 << bits) - 1 >> cidr)
            plen = cidr
        size = 4 if fam == socket.AF_INET else 16
        out = socket.inet_ntop(fam, value.to_bytes(size, "big"))
        return out + (f"/{plen}" if plen and plen < bits else "")
    return text


class _NoId(Exception):
    """A failregex matched without any group naming the failure."""


class _Cache:
    """fail2ban's cache of connections (F-MLFID): at most 100, each for five minutes."""

    def __init__(self) -> None:
        self.items: OrderedDict[str, tuple[dict[str, object], float]] = OrderedDict()

    def get(self, key: str) -> dict[str, object] | None:
        v = self.items.get(key)
        if v is None:
            return None
        if v[1] > time.monotonic():
            return v[0]
        self.items.pop(key, None)
        return None

    def set(self, key: str, value: dict[str, object]) -> None:
        now = time.monotonic()
        if len(self.items) >= _MLFID_MAX:
            while self.items:
                _, (_, expires) = self.items.popitem(last=False)
                if expires > now and len(self.items) < _MLFID_MAX:
                    break
        self.items[key] = (value, now + _MLFID_SECONDS)

    def unset(self, key: str) -> None:
        self.items.pop(key, None)


@dataclass
class Compiled:
    """A filter's regexes and date detection, ready to match."""

    name: str
    failregex: list[Regex]
    ignoreregex: list[Regex]
    prefregex: Regex | None
    maxlines: int
    datepattern: list[str] | None
    journalmatch: list[str]

    @functools.cached_property
    def _leads(self) -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
        rxs = self.failregex
        free = tuple(i for i, rx in enumerate(rxs) if rx.firsts is None)
        chars = set().union(*(rx.firsts for rx in rxs if rx.firsts is not None))
        return {
            c: tuple(i for i, rx in enumerate(rxs) if rx.firsts is None or c in rx.firsts)
            for c in chars
        }, free

    def candidates(self, text: str) -> tuple[int, ...]:
        """The failregexes (their indexes, in order) that may match ``text``: those that may
        begin with any character and those that may begin with its first
        (:attr:`Regex.firsts`)."""
        by_first, free = self._leads
        return by_first.get(text[:1], free)

    def detector(self) -> DateDetector:
        d = DateDetector()
        d.extend(self.datepattern or [])
        return d


class Matcher:
    """One stream of lines through one filter. ``check_all`` tries every failregex on a line
    (fail2ban's sample test does); otherwise the first match wins, as in a jail."""

    def __init__(self, flt: Compiled, *, now: float | None = None, check_all: bool = False) -> None:
        self.flt = flt
        self.fixed_now = now
        self.check_all = check_all
        self.dates = flt.detector()
        self.buffer: list[Line] = []
        self.last_text = ""
        self.last_date: tuple[float, datetime.datetime] | None = None
        self.mlfid = _Cache()
        self._dates: dict[tuple[object, ...], tuple[float, datetime.datetime] | None] = {}

    def now(self) -> float:
        return time.time() if self.fixed_now is None else self.fixed_now

    def process(
        self, line: str, date: tuple[float, datetime.datetime] | None = None, text: str = ""
    ) -> list[Failure]:
        """The failures a line makes; ``date`` and ``text`` when the time is known apart
        from the line (a journal entry)."""
        if date is not None:
            self.last_text, self.last_date = text, date
            return self._find(("", text, line), date)
        dated = self._dated(line)
        return [] if dated is None else self._find(*dated)

    def _dated(self, line: str) -> tuple[Line, tuple[float, datetime.datetime] | None] | None:
        """The line with its date cut out, and its time (None: fail2ban drops the line)."""
        m, template = self.dates.match(line)
        tline: Line = ("", "", line)
        date = None
        if m is not None and template is not None:
            s, e = m.start(1), m.end(1)
            found = line[s:e]
            tline = (line[:s], found, line[e:])
            if found:
                try:
                    date = self._date(m, template)
                except (KeyError, TypeError, OverflowError):
                    # a zone fail2ban does not know, a month without a day: fail2ban
                    # reports an error and drops the line
                    return None
                if date is not None:
                    self.last_text, self.last_date = found, date
            elif self.last_date and self.last_date[0] > self.now() - _RECENT:
                tline, date = ("", self.last_text, line), self.last_date
            else:
                t = self.now()
                date = (t, datetime.datetime.fromtimestamp(t))
        if date is None and self.last_date and self.last_date[0] > self.now() - _RECENT:
            tline, date = ("", self.last_text, line), self.last_date
        return tline, date

    def _date(self, m: re.Match[str], template: Template) -> tuple[float, datetime.datetime] | None:
        """The time of a date found, kept for the second it is asked in: lines of one
        second share their date, and the result depends on the current time only by the
        whole second (it is compared with dates in whole seconds)."""
        now = time.time() if self.fixed_now is None else self.fixed_now
        key = (template, int(now), *m.groups())
        found = self._dates.get(key, self)
        if found is not self:
            return found  # type: ignore[return-value]
        if len(self._dates) > 4096:
            self._dates.clear()
        # an error (a date fail2ban drops) is raised each time, never kept
        found = self.dates.date(m, template, datetime.datetime.fromtimestamp(now))
        self._dates[key] = found
        return found

    def skip(self, text: str, count: int) -> bool:
        """Pass over ``count`` lines (``text``, joined by newlines; no empty or comment
        line among them) known to match no failregex (they have none of its needles, and
        their date starts the line), changing what reading them one by one would change:
        the date detector's counts and the last date. False, with nothing changed, when
        that cannot be known in bulk (then read them one by one)."""
        t = self.dates.settled()
        if t is None or self.flt.maxlines > 1 or t.count_lines(text) != count:
            return False
        last = text[text.rfind("\n") + 1 :]
        m = t.compile().search(last)
        try:
            date = self._date(m, t) if m is not None and m.group(1) else None
        except (KeyError, TypeError, OverflowError):
            date = None
        if m is None or date is None:
            return False
        # the last line as the detector reads it (its settled template, first and
        # anchored, is taken at once), after the counts of the others
        self.dates.add_hits(count - 1)
        self.dates.take_first(m, last)
        self.last_text, self.last_date = m.group(1), date
        return True

    def _ignored(self, buf: str, lines: list[Line], rx: Regex | None = None) -> bool:
        if rx is not None and self.flt.maxlines > 1:
            lines = rx.matched
            buf = join_lines(lines)
        found = False
        for ign in self.flt.ignoreregex:
            if ign.search(buf, lines):
                found = True
                if (not self.check_all or self.flt.maxlines > 1) and rx is not None:
                    self.buffer = rx.unmatched
                if not self.check_all:
                    break
        return found

    def _find(self, tline: Line, date: tuple[float, datetime.datetime] | None) -> list[Failure]:
        flt = self.flt
        if flt.maxlines > 1:
            self.buffer.append(tline)
            lines = self.buffer = self.buffer[-flt.maxlines :]
            buf = join_lines(lines)
        else:
            lines = self.buffer = [tline]
            buf = tline[0] + tline[2] + "\n"  # join_lines of one line
        # with few ignoreregexes fail2ban tries them first, on the whole buffer
        few = len(flt.ignoreregex) < len(flt.failregex) - 2
        if flt.ignoreregex and few and self._ignored(buf, lines):
            return []
        pre: dict[str, object] = {}
        if flt.prefregex is not None:
            if not flt.prefregex.search(buf, lines):
                return []
            pre = flt.prefregex.groups()
            content = pre.pop("content", None)
            if content:
                self.buffer = [("", "", str(content))]
                buf = f"{content}\n"
        return self._failregexes(lines, buf, pre, date)

    def _failregexes(
        self,
        lines: list[Line],
        buf: str | None,
        pre: dict[str, object],
        date: tuple[float, datetime.datetime] | None,
    ) -> list[Failure]:
        out: list[Failure] = []
        failregex = self.flt.failregex
        last = -1  # the regexes up to this one are done
        while True:
            if buf is None:
                buf = join_lines(self.buffer)
            again = False
            for index in self.flt.candidates(buf):
                if index <= last:
                    continue
                if buf is None:
                    # the text changed: the candidates for the new one
                    again = True
                    break
                last = index
                rx = failregex[index]
                if not rx.search(buf, lines):
                    continue
                fail = rx.groups()
                if self.flt.ignoreregex and self._ignored(buf, lines, rx):
                    buf = None
                    if not self.check_all:
                        return out
                    continue
                if not self.check_all or self.flt.maxlines > 1:
                    self.buffer, buf = rx.unmatched, None
                try:
                    found = self._failure(index, rx, pre, fail, date)
                except _NoId:
                    continue
                if found is None:
                    if not self.check_all:
                        return out
                    continue
                out.append(found)
                if not self.check_all:
                    return out
            if not again:
                return out

    def _failure(
        self,
        index: int,
        rx: Regex,
        pre: dict[str, object],
        fail: dict[str, object],
        date: tuple[float, datetime.datetime] | None,
    ) -> Failure | None:
        if pre:
            fail = {**pre, **fail}
        mlfid = fail.get("mlfid")
        if mlfid is not None:
            fail = self._merge(str(mlfid), fail, rx)
            if fail.get("nofail") and not self.check_all:
                return None
        else:
            fail["matches"] = list(fail.get("matches") or []) + rx.matched  # type: ignore[call-overload]
        host = self._host(rx, fail, mlfid)
        if host is None:
            fail["mlfpending"] = 1
            if not self.check_all:
                return None
        if self.check_all and mlfid is not None:
            fail = dict(fail)
        t, wall = date if date is not None else (None, None)
        return Failure(index, host, t, wall, fail)

    @staticmethod
    def _host(rx: Regex, fail: dict[str, object], mlfid: object) -> str | None:
        fid = fail.get("fid")
        cidr_text = fail.get("cidr")
        cidr = int(str(cidr_text)) if cidr_text else None
        for group, family in (("ip4", socket.AF_INET), ("ip6", socket.AF_INET6)):
            ip = fail.get(group)
            if ip is not None:
                host = canonical_host(str(ip), cidr, None if cidr is not None else family)
                if fid is None or fid == ip:
                    return host
                fail["ip"] = host
                return str(fid)
        dns = fail.get("dns")
        if dns is not None:
            return str(dns) if fid is None or fid == dns else str(fid)
        if fid is None and mlfid is None:
            # nothing identifies the failure: fail2ban logs an error and goes on with the
            # next failregex
            raise _NoId
        return None if fid is None else str(fid)

    def _merge(self, mlfid: str, fail: dict[str, object], rx: Regex) -> dict[str, object]:
        known = self.mlfid.get(mlfid)
        users: set[str] | None = None
        flags = 0
        if fail.get("mlfgained"):
            flags |= 8 | 1
            if not fail.get("nofail"):
                fail["nofail"] = fail["mlfgained"]
        elif fail.get("nofail"):
            flags |= 1
        if fail.pop("mlfforget", None):
            flags |= 2
        if known is not None:
            users = _add_user(known, fail.get("user"))
            if known.pop("nofail", None):
                flags |= 4
            if known.pop("mlfgained", None):
                flags |= 4
            if flags & 8:
                known.pop("mlfpending", None)
            if flags & 4 == 0 and not known.get("mlfpending", 0):
                known.pop("matches", None)
            known.update((k, v) for k, v in fail.items() if v is not None)
            fail = known
            if flags & 2:
                self.mlfid.unset(mlfid)
        elif not flags & 2:
            users = _add_user(fail, fail.get("user"))
            self.mlfid.set(mlfid, fail)
        if fail.pop("mlfpending", 0) or (users and len(users) > 1):
            fail.pop("nofail", None)
            fail.pop("mlfgained", None)
            flags &= ~(8 | 1)
        if flags & 1 == 0:
            m = list(fail.pop("nofail-matches", None) or [])  # type: ignore[call-overload]
            m += list(fail.get("matches") or [])  # type: ignore[call-overload]
            if flags & 8 == 0:
                m += rx.matched
            fail["matches"] = m
        elif flags & 3 == 1:
            fail["nofail-matches"] = list(fail.get("nofail-matches") or []) + rx.matched  # type: ignore[call-overload]
        return fail


def _add_user(fail: dict[str, object], user: object) -> set[str] | None:
    users = fail.get("users")
    if user:
        if not users:
            users = fail["users"] = set()
        users.add(user)  # type: ignore[attr-defined]
    return users  # type: ignore[return-value]
