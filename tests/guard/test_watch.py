"""The guard in one process, with a clock the test moves: ignoreip, growing ban times,
expiry of many bans at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guard.harness import config
from todokede.guard.config import load
from todokede.guard.sources import FileSource
from todokede.guard.watch import Guard

LINE = "Dec  7 10:00:00 h sshd[1]: Failed password for root from {} port 22 ssh2\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def started(tmp: Path, jail: str) -> tuple[Guard, Path, Clock]:
    log = tmp / "auth.log"
    log.touch()
    conf = config(tmp, f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\n{jail}')
    clock = Clock()
    g = Guard(load(conf), clock=clock, log=lambda m: None)
    g.start()
    return g, log, clock


def fail(g: Guard, log: Path, addr: str, times: int = 1) -> None:
    with log.open("a") as fh:
        fh.write(LINE.format(addr) * times)
    while g.poll():
        pass


def deny(tmp: Path) -> set[str]:
    return set((tmp / "guard.deny").read_text().split())


@pytest.mark.parametrize(
    ("ignoreip", "addr", "banned"),
    [
        (None, "127.0.0.9", False),  # the default list: loopback
        (None, "192.168.1.9", False),  # and the private networks
        (None, "192.0.2.9", True),
        ('["192.0.2.0/24"]', "192.0.2.9", False),
        ('["192.0.2.0/24"]', "127.0.0.9", True),
        ('["2001:db8::/32"]', "2001:db8::9", False),
        ('["2001:db8::/32"]', "::ffff:127.0.0.9", True),  # mapped: the IPv4 address counts
    ],
)
def test_ignoreip_in_the_running_guard(
    tmp_path: Path, ignoreip: str | None, addr: str, banned: bool
) -> None:
    extra = f"ignoreip = {ignoreip}\n" if ignoreip else ""
    g, log, _ = started(tmp_path, f"maxretry = 2\n{extra}")
    try:
        fail(g, log, addr, 5)
        expected = addr.removeprefix("::ffff:")
        assert (expected in deny(tmp_path)) is banned
        assert g.state.banned("sshd", expected, g.clock()) is banned
    finally:
        g.close()


def test_repeat_offenders_are_banned_longer(tmp_path: Path) -> None:
    g, log, clock = started(
        tmp_path,
        'maxretry = 2\nbantime = "10m"\nbantime_increment = true\nbantime_maxtime = "30m"\n'
        'ignoreip = ["127.0.0.1"]\n',
    )
    try:
        lengths = []
        for _ in range(4):
            fail(g, log, "192.0.2.20", 2)
            [ban] = g.state.active("sshd")
            assert ban.expires is not None
            lengths.append(ban.expires - ban.banned_at)
            clock.now = ban.expires + 1
            g.tick(clock.now)
            assert g.state.active() == [] and "192.0.2.20" not in deny(tmp_path)
        assert lengths == [600.0, 1200.0, 1800.0, 1800.0]
    finally:
        g.close()


def test_many_bans_end_together(tmp_path: Path) -> None:
    g, log, clock = started(tmp_path, 'maxretry = 1\nbantime = "1m"\nignoreip = ["127.0.0.1"]\n')
    try:
        addrs = [f"198.51.100.{i}" for i in range(1, 201)]
        fail(g, log, addrs[0])
        clock.now += 30
        with log.open("a") as fh:
            fh.write("".join(LINE.format(a) for a in addrs[1:]))
        while g.poll():
            pass
        assert deny(tmp_path) == set(addrs)
        clock.now += 31  # the first ban is over, the other 199 are not
        g.tick(clock.now)
        assert deny(tmp_path) == set(addrs[1:])
        clock.now += 30
        g.tick(clock.now)
        assert deny(tmp_path) == set() and g.state.count() == 0
    finally:
        g.close()


def test_a_spoofed_flood_stays_within_max_tracked(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.touch()
    conf = config(
        tmp_path,
        f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\nmaxretry = 5\nreport = "draft"\n'
        'ignoreip = ["127.0.0.1"]\n',
        max_tracked="100",
    )
    g = Guard(load(conf), log=lambda m: None)
    g.start()
    try:
        for block in range(10):
            with log.open("a") as fh:
                fh.write("".join(LINE.format(f"203.0.{block}.{i}") for i in range(200)))
            while g.poll():
                pass
        r = g.running["sshd"]
        assert len(r.counter) == 100 and r.counter.evicted == 1900
        assert len(r.evidence) <= 100 and len(r.first) <= 100 and len(r.service) <= 100
        assert g.state.count() == 0  # nobody reached maxretry
    finally:
        g.close()


class Interrupt:
    """The guard's log: a signal arrives as the ``after``-th ban is logged."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.bans = 0

    def __call__(self, message: str) -> None:
        if " ban " in message:
            self.bans += 1
            if self.bans == self.after:
                raise KeyboardInterrupt


@pytest.mark.parametrize("after", [1, 3, 40])
def test_a_block_that_is_cut_short_keeps_its_bans(tmp_path: Path, after: int) -> None:
    """Many bans from one block share a transaction; a signal in the middle of the block
    leaves the state and the host list agreeing on every ban made, after a restart too."""
    log = tmp_path / "auth.log"
    log.touch()
    conf = config(tmp_path, f'[jail.sshd]\nlogpath = "{log}"\nfilters = ["sshd"]\nmaxretry = 2')
    g = Guard(load(conf), clock=Clock(), log=Interrupt(after))
    g.start()
    addrs = [f"192.0.2.{i}" for i in range(1, 51)]
    with log.open("a") as fh:
        fh.write("".join(LINE.format(a) * 2 for a in addrs))
    if after <= len(addrs):
        with pytest.raises(KeyboardInterrupt):
            g.poll()
    g.close()
    made = set(addrs[:after])
    assert deny(tmp_path) == made
    again = Guard(load(conf), clock=Clock(), log=lambda m: None)
    again.start()  # the host list is rewritten from the state
    try:
        assert {b.addr for b in again.state.active()} == made
        assert deny(tmp_path) == made
    finally:
        again.close()


@pytest.mark.parametrize("chunk", [50, 333, 4096])
def test_failures_add_up_across_pieces_of_a_burst(tmp_path: Path, chunk: int) -> None:
    """A burst read a piece at a time (lines cut between pieces) counts as read at once:
    the addresses with maxretry failures are banned, the others not."""
    g, log, _clock = started(tmp_path, "maxretry = 3")
    source = g.running["sshd"].sources[0]
    assert isinstance(source, FileSource)
    source.follower.limit = chunk
    lines = [LINE.format(f"192.0.2.{i % 40 + 1}") for i in range(100)]  # 1-20: 3 times
    with log.open("a") as fh:
        fh.write("".join(lines))
    polls = 0
    while g.poll():
        polls += 1
    g.close()
    assert polls >= len("".join(lines)) // chunk
    assert deny(tmp_path) == {f"192.0.2.{i}" for i in range(1, 21)}
