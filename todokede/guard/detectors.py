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
from collections.abc import Callable
from datetime import date
from pathlib import Path

from todokede.logs import auth, imap, parse_frame, tcpd
from todokede.logs.events import Event
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Frame, Framer, YearRule
from todokede.logs.text import decode

# (address as logged, tries the line stands for (0: a line that goes with tries), service)
Hit = tuple[str, int, str]
_DOVECOT = frozenset({b"dovecot", b"imap-login", b"pop3-login", b"imap", b"pop3"})
_POSTFIX = b"postfix/"
_SENDMAIL = frozenset({b"sendmail", b"sm-mta"})
# Literals that every line a detector can hit contains, wherever the framing puts the
# message (so RFC 5424 lines too): one regex scan of a whole block in C finds them, and only
# those lines are framed and parsed. Each list is a superset of what its parsers read:
# sshd's message starts (SSHD_STARTS; Solaris's "[ID ...]" and "message repeated" wrap one
# of them), Dovecot's and UW imapd's failures (a process named "imap" may log either),
# Postfix's and sendmail's markers in parse_frame, and the fields of what imap.parse reads
# as an exploit (UW's user= field, Dovecot's over-long commands).
_IMAP_FAILED = (b"auth failed, ", *auth.DOVECOT_VERDICTS, b"Login failed ", b"Login excessive ")
_MARKERS: dict[str, tuple[bytes, ...]] = {
    "sshd": auth.SSHD_STARTS,
    "dovecot": _IMAP_FAILED,
    "imapd": _IMAP_FAILED,
    "postfix": (b"authentication failed",),
    "sendmail": (b"AUTH failure",),
    "tcpd": (tcpd.REFUSED,),
    "exploit": (b"user=", *imap.OVERLONG),
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


def _fail2ban(flt: Filter) -> Callable[[Frame], Hit | None]:
    def match(f: Frame) -> Hit | None:
        _ts, host, prog, pid, msg = f
        text = decode(host + b" " + prog + (b"[" + pid + b"]" if pid else b"") + b": " + msg)
        hit = flt.match(text)
        return None if hit is None else (hit.host, 1, flt.name)

    return match


class Detector:
    """The filters of one jail; :meth:`line` and :meth:`frame` say which address failed,
    :meth:`block` does it for a block of lines when every filter can."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.builtin = [BUILTIN[n] for n in names if n in BUILTIN]
        self.filters = [_fail2ban(Filter.load(Path(n))) for n in names if n not in BUILTIN]
        self.framer = Framer(YearRule.newest(date.today()))
        markers = sorted({m for n in names for m in _MARKERS.get(n, (b"",))}, key=len)
        # a fail2ban filter may match any line: no prefilter then
        self.candidates = (
            re.compile(b"|".join(re.escape(m) for m in reversed(markers)))
            if markers and all(n in _MARKERS for n in names)
            else None
        )

    def block(self, data: bytes) -> list[tuple[Hit, bytes]]:
        """(hit, line) for each failing line of ``data``, as :meth:`plain` finds them, but
        only the lines holding a marker are framed and parsed."""
        if self.candidates is None:
            return self.plain(data)
        out = []
        search, frame, detect = self.candidates.search, self.framer.frame, self.frame
        pos, size = 0, len(data)
        while pos < size:
            m = search(data, pos)
            if m is None:
                break
            start = data.rfind(b"\n", 0, m.start()) + 1
            end = data.find(b"\n", m.end())
            if end < 0:
                end = size
            line = data[start:end].rstrip(b"\r")
            f = frame(line)
            hit = None if f is None else detect(f)
            if hit is not None:
                out.append((hit, line))
            pos = end + 1
        return out

    def plain(self, data: bytes) -> list[tuple[Hit, bytes]]:
        """(hit, line) for each failing line of ``data``: every line framed and parsed."""
        line_of = self.line
        return [
            (hit, line.rstrip(b"\r"))
            for line in data.split(b"\n")
            if (hit := line_of(line)) is not None
        ]

    def frame(self, f: Frame) -> Hit | None:
        if self.builtin:
            ev = parse_frame(f)
            if ev is not None:
                for detect in self.builtin:
                    hit = detect(f[2], ev)
                    if hit is not None:
                        return hit
        for match in self.filters:
            hit = match(f)
            if hit is not None:
                return hit
        return None

    def line(self, line: bytes) -> Hit | None:
        f = self.framer.frame(line.rstrip(b"\r\n"))
        return None if f is None else self.frame(f)
