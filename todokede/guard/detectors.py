"""Which lines are failures, and of which address: todokede's own detectors and fail2ban
filters, over the scanner's syslog framing.

Built-in detectors (a jail's ``filters`` names them):

  tcpd      ``refused connect from ...`` of tcpd, libwrap daemons and ``todokede wrap``
  dovecot   ``(auth failed, N attempts ...) ... rip=ADDR`` of Dovecot's login processes
            (N failures: one connection may try several passwords)
  imapd     UW imapd/ipop3d ``Login failed user=... host=... [ADDR]``
  sshd      OpenSSH ``Failed password for ... from ADDR`` and ``Invalid user ... from ADDR``
  exploit   an over-long or binary IMAP/POP command (the scanner's exploit attempts)

A fail2ban filter sees the line as fail2ban does: ``host prog[pid]: message``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from todokede.logs import imap, tcpd
from todokede.logs.fail2ban import Filter
from todokede.logs.syslog import Frame, Framer, YearRule
from todokede.logs.text import decode

# (address as logged, failures, service)
Hit = tuple[str, int, str]
_DOVECOT = re.compile(rb"\(auth failed, (\d+) attempts?[^)]*\).*?\brip=([0-9a-fA-F.:]+)")
_UW = re.compile(rb"^(?:Login|Authentication) failed .*\[([0-9a-fA-F.:]+)\]")
_SSHD = re.compile(
    rb"^(?:Failed \S+ for (?:invalid user )?.*? from|Invalid user .*? from) "
    rb"([0-9a-fA-F.:]+)(?: port \d+)?"
)
MAX_ATTEMPTS = 100  # one logged line counts for at most this many failures
# The same detectors over a whole block of lines at once (one regex scan in C instead of
# a Python call per line): used when every filter of a jail has one. The tests hold both
# forms to the same table.
_BLOCK_SSHD = re.compile(
    rb"^[^\n]*? sshd(?:\[\d+\])?: (?:Failed \S+ for (?:invalid user )?[^\n]*? from|"
    rb"Invalid user [^\n]*? from) ([0-9a-fA-F.:]+)(?: port \d+)?[^\n]*",
    re.M,
)
_BLOCK_DOVECOT = re.compile(
    rb"^([^\n]*?)\(auth failed, (\d+) attempts?[^)\n]*\)[^\n]*?\brip=([0-9a-fA-F.:]+)[^\n]*",
    re.M,
)


def _tcpd(f: Frame) -> Hit | None:
    msg = f[4]
    if not msg.startswith(tcpd.REFUSED):
        return None
    ev = tcpd.parse(f[0], f[2], msg)
    if ev is None or not ev.addr:
        return None
    return ev.addr, 1, ev.service


def _dovecot(f: Frame) -> Hit | None:
    msg = f[4]
    if b"auth failed" not in msg:
        return None
    m = _DOVECOT.search(msg)
    if m is None:
        return None
    service = "imap" if b"pop3" not in f[2] + msg[:12] else "pop3"
    return decode(m.group(2)), min(int(m.group(1)), MAX_ATTEMPTS), service


def _imapd(f: Frame) -> Hit | None:
    m = _UW.match(f[4])
    if m is None:
        return None
    return decode(m.group(1)), 1, decode(f[2]) or "imapd"


def _sshd(f: Frame) -> Hit | None:
    if not f[2].startswith(b"sshd"):
        return None
    m = _SSHD.match(f[4])
    if m is None:
        return None
    return decode(m.group(1)), 1, "sshd"


def _exploit(f: Frame) -> Hit | None:
    if f[2] not in imap.PROGRAMS:
        return None
    ev = imap.parse(f[0], f[2], f[4])
    if ev is None or ev.kind != "exploit" or not ev.addr:
        return None
    return ev.addr, 1, ev.service


BUILTIN: dict[str, Callable[[Frame], Hit | None]] = {
    "tcpd": _tcpd,
    "dovecot": _dovecot,
    "imapd": _imapd,
    "sshd": _sshd,
    "exploit": _exploit,
}


def _fail2ban(flt: Filter) -> Callable[[Frame], Hit | None]:
    def match(f: Frame) -> Hit | None:
        _ts, host, prog, pid, msg = f
        text = decode(host + b" " + prog + (b"[" + pid + b"]" if pid else b"") + b": " + msg)
        hit = flt.match(text)
        return None if hit is None else (hit.host, 1, flt.name)

    return match


def _sshd_block(data: bytes) -> list[tuple[Hit, bytes]]:
    # the address group is ASCII by its pattern
    return [((m[1].decode(), 1, "sshd"), m[0]) for m in _BLOCK_SSHD.finditer(data)]


def _dovecot_block(data: bytes) -> list[tuple[Hit, bytes]]:
    out = []
    for m in _BLOCK_DOVECOT.finditer(data):
        service = "pop3" if b"pop3" in m.group(1) else "imap"
        attempts = min(int(m.group(2)), MAX_ATTEMPTS)
        out.append(((m[3].decode(), attempts, service), m[0]))
    return out


BLOCK: dict[str, Callable[[bytes], list[tuple[Hit, bytes]]]] = {
    "sshd": _sshd_block,
    "dovecot": _dovecot_block,
}


class Detector:
    """The filters of one jail; :meth:`line` and :meth:`frame` say which address failed,
    :meth:`block` does it for a block of lines when every filter can."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.matchers = [
            BUILTIN[n] if n in BUILTIN else _fail2ban(Filter.load(Path(n))) for n in names
        ]
        self.framer = Framer(YearRule.newest(date.today()))
        self.blocks = [BLOCK[n] for n in names] if all(n in BLOCK for n in names) else None

    def block(self, data: bytes) -> list[tuple[Hit, bytes]] | None:
        """(hit, line) for each failing line of ``data``; None: use :meth:`line` instead."""
        if self.blocks is None:
            return None
        if len(self.blocks) == 1:
            return self.blocks[0](data)
        return [found for scan in self.blocks for found in scan(data)]

    def frame(self, f: Frame) -> Hit | None:
        for match in self.matchers:
            hit = match(f)
            if hit is not None:
                return hit
        return None

    def line(self, line: bytes) -> Hit | None:
        f = self.framer.frame(line.rstrip(b"\r\n"))
        return None if f is None else self.frame(f)
