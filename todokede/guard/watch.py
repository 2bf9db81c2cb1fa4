"""The guard itself: lines in, failures counted per jail, bans out through the actions.

    guard = Guard(load(Path("guard.toml")))
    guard.start()           # re-applies the bans in the state, opens the logs
    guard.run(lambda: stopping)

``ban``/``unban`` are also what ``todokede guard ban``/``unban`` call, from another process:
both work on the same SQLite state and the same files, so a running guard and the command
line never disagree for longer than a poll.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from todokede.errors import InputError, TodokedeError
from todokede.guard.actions import Action, Command, HostsDeny, JsonLine, Nft
from todokede.guard.config import GuardConfig, Jail
from todokede.guard.counter import Counter
from todokede.guard.detectors import Detector
from todokede.guard.networks import Ignore, normalize
from todokede.guard.reports import Reporter, require
from todokede.guard.sources import FileSource, JournalReader, JournalSource
from todokede.guard.state import Ban, State
from todokede.guard.wakeup import Wakeup
from todokede.logs.syslog import Frame
from todokede.logs.text import decode

TICK = 1.0  # seconds between expiry checks
EXPIRY_LOG = 20  # more bans ending in one tick are logged as one line
REBUILT = ("hosts-deny", "nft")  # actions whose start() rebuilds everything from the state
EVIDENCE_LINES = 5
EVIDENCE_CHARS = 200


def stderr_log(message: str) -> None:
    sys.stderr.write(f"guard: {message}\n")
    sys.stderr.flush()


@dataclass
class Running:
    """One jail at work: its counters, its filters and what it has seen of each address.

    ``counter`` counts tries; ``noted`` the lines that only go with tries logged elsewhere
    (sshd's ``Invalid user``), which count for an address with no try: as the scanner's
    findings count them (:mod:`todokede.logs.auth`)."""

    jail: Jail
    counter: Counter
    noted: Counter
    ignore: Ignore
    detector: Detector
    sources: list[FileSource | JournalSource] = field(default_factory=list)
    evidence: dict[str, deque[str]] = field(default_factory=dict)
    first: dict[str, float] = field(default_factory=dict)
    service: dict[str, str] = field(default_factory=dict)


class Guard:
    def __init__(
        self,
        config: GuardConfig,
        *,
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] = stderr_log,
        journal: JournalReader | None = None,
        token: str = "",
    ) -> None:
        self.config = config
        self.clock = clock
        self.log = log
        self.journal = journal
        self.state = State(config.state)
        self.running: dict[str, Running] = {}
        self.reporter = Reporter(config.state, config.report_dir, config.center, token, log)
        self._actions: dict[str, Action] = {}
        self._next_tick = 0.0
        self.wakeup: Wakeup | None = None
        self.lines = 0
        self.bans = 0

    # -- actions -------------------------------------------------------------------------

    def action(self, name: str) -> Action:
        found = self._actions.get(name)
        if found is None:
            c = self.config
            if name == "hosts-deny":
                found = HostsDeny(c.hosts_deny, self._hosts_deny_addrs, c.hosts_deny_daemons)
            elif name == "nft":
                found = Nft(c.nft_table, c.nft_set, c.nft_chain)
            elif name == "command":
                found = Command(c.ban_command, c.unban_command)
            else:
                found = JsonLine(c.json)
            self._actions[name] = found
        return found

    def _hosts_deny_addrs(self) -> list[str]:
        jails = {n for n, j in self.config.jails.items() if "hosts-deny" in j.actions}
        return [b.addr for b in self.state.active() if b.jail in jails]

    def _lift(self, ban: Ban, skip: tuple[str, ...] = ()) -> None:
        self._each(ban.jail, lambda a: a.unban(ban), skip)

    def _each(
        self, jail_name: str, what: Callable[[Action], None], skip: tuple[str, ...] = ()
    ) -> None:
        jail = self.config.jails.get(jail_name)
        names = jail.actions if jail is not None else ()
        for name in names:
            if name in skip:
                continue
            try:
                what(self.action(name))
            except (TodokedeError, OSError) as exc:
                self.log(f"{jail_name}: action {name}: {exc}")

    # -- start and stop ------------------------------------------------------------------

    def start(self) -> None:
        """Expire what ran out while stopped, re-apply the rest, open the logs."""
        if any(j.report != "none" for j in self.config.jails.values()):
            require()  # before anything is applied: a reload then keeps the running guard
        now = self.clock()
        for ban in self.state.expire(now):
            # the host list and the nftables sets are rebuilt from the state below
            self._lift(ban, skip=REBUILT)
        active = self.state.active()
        used = {a for j in self.config.jails.values() for a in j.actions}
        for name in sorted(used):
            bans = [b for b in active if name in self._jail_actions(b.jail)]
            try:
                self.action(name).start(bans, now)
            except (TodokedeError, OSError) as exc:
                self.log(f"action {name}: cannot re-apply {len(bans)} ban(s): {exc}")
        self.wakeup = Wakeup(p for j in self.config.jails.values() for p in j.logpath)
        for jail in self.config.jails.values():
            self.running[jail.name] = self._open(jail)
        self.reporter.start()
        self.log(f"started: {len(self.running)} jail(s), {len(active)} ban(s) re-applied")

    def _jail_actions(self, jail_name: str) -> tuple[str, ...]:
        jail = self.config.jails.get(jail_name)
        return jail.actions if jail is not None else ()

    def _open(self, jail: Jail) -> Running:
        try:
            detector = Detector(jail.filters)
        except TodokedeError as exc:
            raise InputError(str(exc), source=self.config.source, field="filters") from None
        r = Running(
            jail,
            Counter(jail.maxretry, jail.findtime, self.config.max_tracked),
            Counter(jail.maxretry, jail.findtime, self.config.max_tracked),
            Ignore(jail.ignoreip),
            detector,
        )
        r.sources.extend(FileSource(p) for p in jail.logpath)
        if jail.journal or jail.journal_file:
            wake = self.wakeup.wake if self.wakeup is not None else None
            r.sources.append(JournalSource(jail.journal, jail.journal_file, self.journal, wake))
        return r

    def close(self) -> None:
        for r in self.running.values():
            for s in r.sources:
                s.close()
        self.running.clear()
        if self.wakeup is not None:
            self.wakeup.close()
            self.wakeup = None
        self.reporter.stop()
        self.state.close()

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: Callable[[], bool]) -> None:
        while not stop():
            if not self.poll():
                self.idle()

    def idle(self) -> None:
        """Wait for new lines (inotify, the journal), at most one poll interval."""
        if self.wakeup is not None:
            self.wakeup.wait(self.config.poll)
        else:
            time.sleep(self.config.poll)

    def poll(self) -> bool:
        """Read what the sources have; True if there was anything."""
        got = False
        for r in list(self.running.values()):
            for s in r.sources:
                if isinstance(s, JournalSource):
                    frames = s.poll()
                    if s.error:
                        self.log(f"{r.jail.name}: {s.error}")
                        s.error = None
                    for f in frames:
                        got = True
                        self.frame(r, f)
                else:
                    data = s.poll()
                    if data:
                        self.data(r, data, str(s.path))
                    got = got or bool(data) or s.pending
        now = self.clock()
        if now >= self._next_tick:
            self._next_tick = now + TICK
            self.tick(now)
        return got

    def data(self, r: Running, data: bytes, source: str = "") -> None:
        # A block makes many small objects and no reference cycles: the cycle collector,
        # which would walk the counters' tables again and again, waits until it is done.
        collect = gc.isenabled()
        gc.disable()
        try:
            self._data(r, data, source)
        finally:
            if collect:
                gc.enable()

    def _data(self, r: Running, data: bytes, source: str) -> None:
        found = r.detector.block(data, source)
        self.lines += data.count(b"\n")
        # one arrival time for the whole block: each address is counted once, with its sums
        # of tries and of lines without one
        seen: dict[str, list[Any]] = {}
        for (addr, count, service), line in found:
            entry = seen.get(addr)
            if entry is None:
                seen[addr] = [count, 0 if count else 1, service, line]
            else:
                entry[0] += count
                entry[1] += 0 if count else 1
                entry[3] = line
        now = self.clock()
        with self.state.batch():
            for addr, (count, noted, service, line) in seen.items():
                self.failure(r, addr, count, service, line, now, noted)

    def line(self, r: Running, line: bytes) -> None:
        self.lines += 1
        hit = r.detector.line(line, "lines")
        if hit is not None:
            self.failure(r, hit[0], hit[1], hit[2], line)

    def frame(self, r: Running, f: Frame) -> None:
        self.lines += 1
        hit = r.detector.frame(f, "journal")
        if hit is not None:
            self.failure(r, hit[0], hit[1], hit[2], f[2] + b": " + f[4])

    def failure(
        self, r: Running, logged: str, count: int, service: str, line: bytes,
        now: float | None = None, noted: int | None = None,
    ) -> None:  # fmt: skip
        """``count`` tries of ``logged``, and ``noted`` lines without a try (by default: the
        line, if it is one)."""
        addr = r.ignore.banable(logged)
        if addr is None:
            return
        if now is None:
            now = self.clock()
        if noted is None:
            noted = 0 if count else 1
        seen = r.counter.add(addr, now, count)
        if not seen and noted:
            seen = r.noted.add(addr, now, noted)
        if r.jail.report != "none":
            self._remember(r, addr, now, service, line)
        if seen >= r.jail.maxretry and not self.state.banned(r.jail.name, addr, now):
            self.ban(r.jail.name, addr, failures=seen, now=now)

    def _remember(self, r: Running, addr: str, now: float, service: str, line: bytes) -> None:
        # bounded as the counter is: the same addresses, a few short lines each
        if addr not in r.evidence:
            if len(r.evidence) >= self.config.max_tracked:
                old = next(iter(r.evidence))
                del r.evidence[old]
                r.first.pop(old, None)
                r.service.pop(old, None)
            r.evidence[addr] = deque(maxlen=EVIDENCE_LINES)
            r.first[addr] = now
        r.evidence[addr].append(decode(line[:EVIDENCE_CHARS]))
        r.service[addr] = service

    def tick(self, now: float) -> None:
        expired = self.state.expire(now)
        # The kernel has ended the nftables elements itself, and the host list is rewritten
        # once for all of them: many bans ending together stay one rewrite.
        for ban in expired:
            self._lift(ban, skip=REBUILT)
            if len(expired) <= EXPIRY_LOG:
                self.log(f"{ban.jail}: unban {ban.addr} (expired)")
        if len(expired) > EXPIRY_LOG:
            self.log(f"unban {len(expired)} addresses (expired)")
        if any("hosts-deny" in self._jail_actions(b.jail) for b in expired):
            deny = self.action("hosts-deny")
            assert isinstance(deny, HostsDeny)
            try:
                deny.rewrite()
            except OSError as exc:
                self.log(f"action hosts-deny: {exc}")
        for r in self.running.values():
            r.counter.prune(now)
            r.noted.prune(now)

    # -- bans ----------------------------------------------------------------------------

    def ban(
        self, jail_name: str, addr: str, *, failures: int = 0, now: float | None = None,
        seconds: float | None = None,
    ) -> Ban:  # fmt: skip
        jail = self.config.jails[jail_name]
        now = self.clock() if now is None else now
        if seconds is None:
            seconds = jail.ban_seconds(self.state.previous_bans(jail_name, addr))
        ban = self.state.ban(jail_name, addr, now, seconds, failures)
        self.bans += 1
        self._each(jail_name, lambda a: a.ban(ban, now))
        left = ban.left(now)
        self.log(
            f"{jail_name}: ban {addr} after {failures} failure(s) for "
            + ("ever" if left is None else f"{left:.0f}s")
        )
        r = self.running.get(jail_name)
        if r is not None:
            r.counter.forget(addr)
            r.noted.forget(addr)
            if jail.report != "none" and self.state.previous_bans(jail_name, addr) >= (
                jail.report_threshold
            ):
                lines = list(r.evidence.pop(addr, ()))
                first = r.first.pop(addr, now)
                service = r.service.pop(addr, jail_name)
                key = self.reporter.make(
                    self.state, jail.report, ban, service, first, lines, jail.lang
                )
                if key:
                    self.log(f"{jail_name}: report {key} ({jail.report})")
        return ban

    def unban(self, jail_name: str | None, addr: str) -> list[Ban]:
        removed = self.state.unban(jail_name, addr)
        for ban in removed:
            self._lift(ban)
        return removed


def typed_from() -> str | None:
    """The address the current login session comes from (SSH_CLIENT / SSH_CONNECTION)."""
    for var in ("SSH_CLIENT", "SSH_CONNECTION"):
        value = os.environ.get(var, "").split()
        if value:
            return normalize(value[0])
    return None
