"""What a ban does: a host list for hosts.deny, an nftables set, a command, a JSON line.

Every action has ``start`` (re-apply the bans in the state), ``ban`` and ``unban``.

``hosts-deny`` writes one file that todokede owns: one address a line, the form of a
hosts_access(5) ``/file`` pattern, so the site's own hosts.deny names it once
(``ALL: /var/lib/todokede/guard.deny``) and is never edited. libwrap reads the file on every
connection and ``todokede wrap`` when it changes. A ban appends one line in a single write
(a reader never sees half an address); an unban rewrites the file and renames it into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shlex
import subprocess
import sys
import syslog
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from todokede.errors import ActionError
from todokede.guard.state import Ban

COMMAND_TIMEOUT = 30.0


class Action(Protocol):
    def start(self, bans: list[Ban], now: float) -> None: ...
    def ban(self, ban: Ban, now: float) -> None: ...
    def unban(self, ban: Ban) -> None: ...


def pattern(addr: str) -> str:
    """An address as a hosts_access(5) pattern (IPv6 in brackets)."""
    return f"[{addr}]" if ":" in addr else addr


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class HostsDeny:
    """The file guard owns. ``current`` gives every address banned through this file.

    With ``daemons`` each line is a whole rule, ``DAEMONS: ADDR``, for a hosts.deny that
    guard owns entirely (a ``wrap --rules-dir`` of its own, fail2ban's format)."""

    def __init__(self, path: Path, current: Callable[[], Iterable[str]], daemons: str = "") -> None:
        self.path = Path(path)
        self.current = current
        self.prefix = f"{daemons}: " if daemons else ""

    def _line(self, addr: str) -> str:
        return f"{self.prefix}{pattern(addr)}\n"

    def rewrite(self) -> None:
        addrs = sorted(set(self.current()))
        text = "".join(self._line(a) for a in addrs)
        with _locked(self.path):
            fd, tmp = tempfile.mkstemp(prefix=".guard-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="ascii") as fh:
                    fh.write(text)
                os.chmod(tmp, 0o644)  # libwrap daemons run as other users
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise

    def start(self, bans: list[Ban], now: float) -> None:
        self.rewrite()

    def ban(self, ban: Ban, now: float) -> None:
        line = self._line(ban.addr).encode("ascii")
        with _locked(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def unban(self, ban: Ban) -> None:
        self.rewrite()


def _nft(script: str) -> None:
    try:
        done = subprocess.run(
            ["nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ActionError(f"nft: {exc}") from None
    if done.returncode != 0:
        raise ActionError(f"nft: {done.stderr.strip() or 'failed'}")


class Nft:
    """A named nftables set per address family, with timeouts: the kernel ends the bans
    itself, also when guard is not running. With ``chain`` an input chain of the table
    drops the sets' addresses; without it the site's own rules refer to the sets."""

    def __init__(self, table: str, name: str, chain: bool) -> None:
        family, _, tname = table.rpartition(" ")
        self.family = family or "inet"
        self.table = f"{self.family} {tname}"
        self.sets = {4: f"{name}4", 6: f"{name}6"}
        if self.family == "ip":
            del self.sets[6]
        elif self.family == "ip6":
            del self.sets[4]
        self.chain = chain
        self.name = name
        self._ready = False  # the table and sets exist (made by start, or by the first ban)

    def _set(self, addr: str) -> str | None:
        return self.sets.get(6 if ":" in addr else 4)

    @staticmethod
    def _element(ban: Ban, now: float) -> str:
        left = ban.left(now)
        return ban.addr if left is None else f"{ban.addr} timeout {max(1, math.ceil(left))}s"

    def setup(self) -> list[str]:
        lines = [f"add table {self.table}"]
        for version, s in self.sets.items():
            kind = "ipv4_addr" if version == 4 else "ipv6_addr"
            lines.append(f"add set {self.table} {s} {{ type {kind}; flags timeout; }}")
        if self.chain:
            chain = f"{self.table} {self.name}_input"
            lines.append(
                f"add chain {chain} {{ type filter hook input priority -10; policy accept; }}"
            )
            lines.append(f"flush chain {chain}")
            for version, s in self.sets.items():
                lines.append(f"add rule {chain} {'ip' if version == 4 else 'ip6'} saddr @{s} drop")
        return lines

    def start(self, bans: list[Ban], now: float) -> None:
        lines = self.setup() + [f"flush set {self.table} {s}" for s in self.sets.values()]
        by_set: dict[str, list[str]] = {}
        for ban in bans:
            s = self._set(ban.addr)
            if s is not None and (ban.left(now) is None or (ban.left(now) or 0) > 0):
                by_set.setdefault(s, []).append(self._element(ban, now))
        for s, elements in by_set.items():
            for i in range(0, len(elements), 1000):
                chunk = ", ".join(elements[i : i + 1000])
                lines.append(f"add element {self.table} {s} {{ {chunk} }}")
        _nft("\n".join(lines) + "\n")
        self._ready = True

    def ban(self, ban: Ban, now: float) -> None:
        s = self._set(ban.addr)
        if s is None:
            return
        # add, delete and add again in one transaction: a ban that is there gets its new time
        target = f"{self.table} {s}"
        setup = "" if self._ready else "\n".join(self.setup()) + "\n"
        self._ready = True
        _nft(
            setup + f"add element {target} {{ {ban.addr} }}\n"
            f"delete element {target} {{ {ban.addr} }}\n"
            f"add element {target} {{ {self._element(ban, now)} }}\n"
        )

    def unban(self, ban: Ban) -> None:
        s = self._set(ban.addr)
        if s is None:
            return
        target = f"{self.table} {s}"
        # the kernel may have ended it already: add first, so the delete always succeeds
        _nft(f"add element {target} {{ {ban.addr} }}\ndelete element {target} {{ {ban.addr} }}\n")


def expand(template: str, ban: Ban, now: float) -> list[str]:
    """A command line with fail2ban's tags filled in; each argument is one argv word, so
    nothing from a log reaches a shell."""
    left = ban.left(now)
    tags = {
        "<ip>": ban.addr,
        "<name>": ban.jail,
        "<failures>": str(ban.failures),
        "<bantime>": "-1" if left is None else str(math.ceil(left)),
    }
    out = []
    for word in shlex.split(template):
        for tag, value in tags.items():
            word = word.replace(tag, value)
        out.append(word)
    return out


class Command:
    """fail2ban's actionban/actionunban: a program run with <ip>, <name>, <failures>."""

    def __init__(self, ban_command: str, unban_command: str) -> None:
        self.ban_command = ban_command
        self.unban_command = unban_command

    def _run(self, template: str, ban: Ban, now: float) -> None:
        if not template:
            return
        argv = expand(template, ban, now)
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ActionError(f"{argv[0]}: {exc}") from None
        if done.returncode != 0:
            tail = done.stderr.strip()[-200:]  # a command's own words, for the log
            raise ActionError(f"{argv[0]} exited with {done.returncode}: {tail}")

    def start(self, bans: list[Ban], now: float) -> None:
        for ban in bans:
            self._run(self.ban_command, ban, now)

    def ban(self, ban: Ban, now: float) -> None:
        self._run(self.ban_command, ban, now)

    def unban(self, ban: Ban) -> None:
        self._run(self.unban_command, ban, ban.banned_at)


class JsonLine:
    """One JSON object a ban or unban, on standard output or to syslog (for a SIEM)."""

    def __init__(self, where: str) -> None:
        self.where = where
        if where == "syslog":
            syslog.openlog("todokede-guard", syslog.LOG_PID, syslog.LOG_AUTH)

    def emit(self, event: str, ban: Ban, now: float) -> None:
        left = ban.left(now)
        record = {
            "event": event,
            "jail": ban.jail,
            "ip": ban.addr,
            "failures": ban.failures,
            "bantime": None if left is None else math.ceil(left),
            "time": now,
        }
        text = json.dumps(record, ensure_ascii=True)
        if self.where == "syslog":
            syslog.syslog(syslog.LOG_NOTICE, text)
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def start(self, bans: list[Ban], now: float) -> None:
        pass  # re-applying is not news

    def ban(self, ban: Ban, now: float) -> None:
        self.emit("ban", ban, now)

    def unban(self, ban: Ban) -> None:
        self.emit("unban", ban, time.time())
