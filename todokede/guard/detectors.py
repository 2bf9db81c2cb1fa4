"""Which lines are failures, and of which address: the scanner's own parsers
(:func:`todokede.logs.parse_frame`, failed logins from :mod:`todokede.logs.auth`) and
fail2ban filters, over the scanner's syslog framing. ``scan`` and ``guard`` read the same
lines as the same failures.

Built-in detectors (a jail's ``filters`` names them):

  tcpd      ``refused connect from ...`` of tcpd, libwrap daemons and ``todokede wrap``
  dovecot   Dovecot's failed logins: ``(auth failed, N attempts ...) ... rip=ADDR`` of its
            login processes (N tries: one connection may try several passwords), and its
            auth process's failed lookups (``auth_verbose``)
  imapd     UW imapd/ipop3d ``Login failed user=... host=... [ADDR]``
  sshd      OpenSSH's failed logins (``Failed password``, ``Invalid user``, PAM's
            ``authentication failure``, pre-authentication disconnects...)
  postfix   Postfix smtpd's ``SASL LOGIN authentication failed``
  sendmail  sendmail's ``AUTH failure``
  exploit   an over-long or binary IMAP/POP command (the scanner's exploit attempts)

A hit counts the tries its line stands for, as the scanner's findings count them
(:mod:`todokede.logs.auth`): a line that only goes with tries logged elsewhere (sshd's
``Invalid user`` before its ``Failed password``) counts 0, and the guard counts such lines
only for an address with no try (``Hit`` count 0).

A fail2ban filter sees the line as fail2ban does: ``host prog[pid]: message``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from todokede.logs import auth, imap, parse_frame, tcpd
from todokede.logs.events import Event
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Frame, Framer, YearRule
from todokede.logs.text import decode, field

# (address as logged, tries the line stands for (0: a line that goes with tries), service)
Hit = tuple[str, int, str]
_DOVECOT = frozenset({b"dovecot", b"imap-login", b"pop3-login", b"imap", b"pop3"})
_POSTFIX = b"postfix/"
_SENDMAIL = frozenset({b"sendmail", b"sm-mta"})
# What every line a detector can hit contains, wherever the framing puts the message (so
# RFC 5424 lines too): one regex scan of a whole block in C finds them, and only those lines
# are framed and parsed. Each list is a superset of what its parsers read: sshd's message
# starts (SSHD_STARTS; Solaris's "[ID ...]" and "message repeated" wrap one of them), the two
# commonest of them (PAM's sessions, "User child is on pid") narrowed to what auth.sshd
# reads after them, Dovecot's and UW imapd's failures (a process named "imap" may log
# either), Postfix's and sendmail's markers in parse_frame, and the fields of what
# imap.parse reads as an exploit (UW's user= field, Dovecot's over-long commands).
_NARROWED = {
    b"pam_unix(": rb"pam_unix\([a-z0-9_-]+:auth\): authentication failure;",
    b"User ": rb"User \S+ from \S+ not allowed because",
}
_IMAP_FAILED = (b"auth failed, ", *auth.DOVECOT_VERDICTS, b"Login failed ", b"Login excessive ")
_MARKERS: dict[str, tuple[bytes, ...]] = {  # regular expressions
    name: tuple(_NARROWED.get(m) or re.escape(m) for m in literals)
    for name, literals in {
        "sshd": auth.SSHD_STARTS,
        "dovecot": _IMAP_FAILED,
        "imapd": _IMAP_FAILED,
        "postfix": (b"authentication failed",),
        "sendmail": (b"AUTH failure",),
        "tcpd": (tcpd.REFUSED,),
        "exploit": (b"user=", *imap.OVERLONG),
    }.items()
}


def _failure(ev: Event) -> Hit | None:
    addr = ev.addr or ev.host
    if not addr:
        return None
    return addr, ev.size, ev.service.removesuffix("-login")


def _tcpd(prog: bytes, ev: Event) -> Hit | None:
    if ev.kind != "connect" or ev.status != "refused" or not ev.addr:
        return None
    return ev.addr, 1, ev.service


def _dovecot(prog: bytes, ev: Event) -> Hit | None:
    if ev.kind != "failure" or (prog not in _DOVECOT and not prog.endswith(b"-login")):
        return None
    return _failure(ev)


def _imapd(prog: bytes, ev: Event) -> Hit | None:
    if ev.kind != "failure" or prog not in imap.PROGRAMS or prog in _DOVECOT:
        return None
    return _failure(ev)


def _sshd(prog: bytes, ev: Event) -> Hit | None:
    return _failure(ev) if ev.kind == "failure" and prog in auth.SSHD else None


def _postfix(prog: bytes, ev: Event) -> Hit | None:
    return _failure(ev) if ev.kind == "failure" and prog.startswith(_POSTFIX) else None


def _sendmail(prog: bytes, ev: Event) -> Hit | None:
    return _failure(ev) if ev.kind == "failure" and prog in _SENDMAIL else None


def _exploit(prog: bytes, ev: Event) -> Hit | None:
    if ev.kind != "exploit" or prog not in imap.PROGRAMS or not ev.addr:
        return None
    return ev.addr, 1, ev.service


BUILTIN: dict[str, Callable[[bytes, Event], Hit | None]] = {
    "tcpd": _tcpd,
    "dovecot": _dovecot,
    "imapd": _imapd,
    "sshd": _sshd,
    "postfix": _postfix,
    "sendmail": _sendmail,
    "exploit": _exploit,
}


# sshd's "Failed password" in a BSD-stamped line, read whole where the block is searched
# (the most common failure by far): the host has no space, colon or bracket, so the message
# starts where the framer starts it, and auth.sshd's own regex reads it with the same
# groups. Its "." stops at a line's end and at a carriage return, so a line it takes has
# neither and reads as on its own. Other lines, and a stamp that is no date, take the
# framer and the parser.
_SSHD_FAILED = re.compile(
    rb"([A-Z][a-z][a-z] [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]) [^\s:\[\]]+ ("
    + b"|".join(re.escape(p) for p in sorted(auth.SSHD))
    + rb")\[[0-9]+\]: "
    + auth.FAILED.pattern.replace(b".", rb"[^\r\n]"),
    re.M,
)
_SSHD_SERVICE = {p: field(p) for p in auth.SSHD}
# an RFC 5424 line: fail2ban's text of it is made from its fields, not cut from the line
_RFC5424 = rb"^<[0-9]{1,3}>1 "


def _no_match(data: bytes, pos: int) -> None:
    return None


def _fail2ban_text(line: bytes, f: Frame) -> bytes:
    """What a fail2ban filter reads of a framed line: the line after its date, as fail2ban
    cuts it (``host prog[pid]: message``); an RFC 5424 line's fields in that shape."""
    at = 0
    if line[:1] == b"<":
        at = line.find(b">", 1, 6) + 1
        if line[at : at + 2] == b"1 ":
            return _joined(f)
    if 48 <= line[at] <= 57:  # a digit: an RFC 3339 stamp up to the first space
        return line[line.find(b" ", at) + 1 :]
    return line[at + 16 :]


def _joined(f: Frame) -> bytes:
    _ts, host, prog, pid, msg = f
    return host + b" " + prog + (b"[" + pid + b"]" if pid else b"") + b": " + msg


class Detector:
    """The filters of one jail; :meth:`line` and :meth:`frame` say which address failed,
    :meth:`block` does it for a block of lines, reading only those that may fail.

    A fail2ban filter keeps its state per ``source`` (a log), as fail2ban does per file:
    lines are fed to it in their order, with the time they are read."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.builtin = [BUILTIN[n] for n in names if n in BUILTIN]
        self.filters = [Filter.load(Path(n)) for n in names if n not in BUILTIN]
        self.framer = Framer(YearRule.newest(date.today()))
        # a fail2ban filter reads every line that may fail, these too
        self._sshd = _SSHD_FAILED.match if "sshd" in names and not self.filters else None
        self._when: tuple[float, datetime] | None = None
        self.candidates = _candidates(names, self.filters)
        # the same without RFC 5424 lines, for a block that has none: a "^" among the
        # literals makes the search try every position (twice the time)
        self._plain_candidates = self.candidates
        if self.candidates is not None and self.filters:
            self._plain_candidates = _candidates(names, self.filters, rfc5424=False)

    def block(self, data: bytes, source: str = "") -> list[tuple[Hit, bytes]]:
        """(hit, line) for each failing line of ``data``, as :meth:`plain` finds them, but
        only the lines holding a marker are framed and parsed (sshd's ``Failed`` lines
        read where they are found)."""
        if self.candidates is None:
            return self.plain(data, source)
        self._when = None  # one time for the block
        out = []
        candidates: re.Pattern[bytes] | None = self.candidates
        if data[:1] != b"<" and b"\n<" not in data:
            candidates = self._plain_candidates
        assert candidates is not None
        search, frame, detect = candidates.search, self.framer.frame, self._detect
        sshd, stamps, valid = self._sshd or _no_match, self.framer.bsd_cache, self.framer.bsd_time
        pos, size = 0, len(data)
        s = None
        while pos < size:
            if s is not None:  # failures come in runs: the next line is tried as one first
                s = sshd(data, pos)
            if s is not None:
                start = pos
            else:
                m = search(data, pos)
                if m is None:
                    break
                start = data.rfind(b"\n", 0, m.start()) + 1
                s = sshd(data, start)
            if s is not None and (s[1] in stamps or valid(s[1]) is not None):
                pos = s.end() + 1
                how = s[3]
                if how == b"publickey":
                    continue  # a client offers its keys in turn: not guessing
                # auth._client's name or address, which the hit takes either way
                who = s[5].decode("ascii", "replace")
                if who[:7] == "::ffff:" and "." in who:
                    who = who[7:]
                out.append(((who, 0 if how == b"none" else 1, _SSHD_SERVICE[s[2]]), s[0]))
                continue
            s = None
            end = data.find(b"\n", start)
            if end < 0:
                end = size
            pos = end + 1
            line = data[start:end]
            if line[-1:] == b"\r":
                line = line.rstrip(b"\r")
            f = frame(line)
            found = None if f is None else detect(f, line, source)
            if found is not None:
                out.append((found, line))
        return out

    def plain(self, data: bytes, source: str = "") -> list[tuple[Hit, bytes]]:
        """(hit, line) for each failing line of ``data``: every line framed and parsed."""
        self._when = None
        line_of = self._line
        return [
            (hit, line.rstrip(b"\r"))
            for line in data.split(b"\n")
            if (hit := line_of(line, source)) is not None
        ]

    def frame(self, f: Frame, source: str = "") -> Hit | None:
        """The hit of a frame without its line (a journal entry's)."""
        self._when = None
        return self._detect(f, None, source)

    def line(self, line: bytes, source: str = "") -> Hit | None:
        self._when = None
        return self._line(line, source)

    def _line(self, line: bytes, source: str) -> Hit | None:
        line = line.rstrip(b"\r\n")
        f = self.framer.frame(line)
        return None if f is None else self._detect(f, line, source)

    def _detect(self, f: Frame, line: bytes | None, source: str) -> Hit | None:
        if self.builtin:
            ev = parse_frame(f)
            if ev is not None:
                for detect in self.builtin:
                    hit = detect(f[2], ev)
                    if hit is not None:
                        return hit
        if not self.filters:
            return None
        text = decode(_joined(f) if line is None else _fail2ban_text(line, f))
        if self._when is None:
            now = time.time()
            self._when = (now, datetime.fromtimestamp(now))
        found = None
        for flt in self.filters:  # each reads every line, as each jail of fail2ban would
            failures = flt.feed(source, text, self._when)
            if failures and found is None:
                found = failures[0].host, 1, flt.name
        return found


def _candidates(
    names: tuple[str, ...], filters: list[Filter], rfc5424: bool = True
) -> re.Pattern[bytes] | None:
    """One regex finding the lines that may fail (None: any line may): the detectors'
    markers, the filters' needles (ASCII: the same bytes in each encoding a line is decoded
    from; an ISO-2022-JP escape could part them, so a line with one is taken), and RFC 5424
    lines, whose text for the filters is not part of the line."""
    markers = {m for n in names if n in BUILTIN for m in _MARKERS[n]}
    extra: list[bytes] = []
    if filters:
        for flt in filters:
            needles = flt.needles
            if not needles or not all(n.isascii() for n in needles):
                return None
            markers.update(re.escape(n.encode()) for n in needles)
        extra += [b"\x1b", _RFC5424] if rfc5424 else [b"\x1b"]
    ordered = sorted(markers, key=len, reverse=True)
    return re.compile(b"|".join([*extra, *ordered]), re.M)
