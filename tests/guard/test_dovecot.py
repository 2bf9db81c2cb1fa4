"""The seed's advice end to end: a client that keeps failing to log in to a real Dovecot is
refused by ``todokede wrap`` at its next connection, through the host list guard owns;
another address still gets in; the ban ends on time and survives a restart of guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guard.harness import config, fail_login, greeting, guard, run, wait_until, wrap
from tests.realservers import dovecot

JAIL = """
[jail.imap]
logpath = "{log}"
filters = ["dovecot"]
maxretry = 3
findtime = "10m"
bantime = "{bantime}"
ignoreip = ["127.0.0.1"]
actions = ["hosts-deny"]
"""


def banned(deny: Path) -> set[str]:
    return set(deny.read_text().split()) if deny.exists() else set()


@pytest.mark.peer
@pytest.mark.parametrize(("attacker", "bystander"), [("127.0.0.5", "127.0.0.6")])
def test_failures_in_dovecot_ban_at_the_wrapper(
    tmp_path: Path, attacker: str, bystander: str
) -> None:
    deny = tmp_path / "guard.deny"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hosts.allow").write_text("")
    (rules / "hosts.deny").write_text(f"# the site's own line\nimapd: {deny}\n")
    with dovecot(tmp_path) as imap:
        assert imap.log is not None
        wait_until(imap.log.exists, what="dovecot's log")
        conf = config(tmp_path, JAIL.format(log=imap.log, bantime="6s"))
        with wrap(imap.port, rules, tmp_path / "wrap.log") as front, guard(conf):
            assert greeting(front, attacker).startswith(b"* OK")
            for n in range(3):
                assert b"a1 NO" in fail_login(imap.port, attacker)
                if n < 2:  # below maxretry: still let in
                    assert attacker not in banned(deny)
            wait_until(lambda: attacker in banned(deny), what="the ban")
            assert greeting(front, attacker) == b""
            assert greeting(front, bystander).startswith(b"* OK")
            wait_until(lambda: attacker not in banned(deny), timeout=20, what="the ban to end")
            assert greeting(front, attacker).startswith(b"* OK")
        assert "refused connect from 127.0.0.5" in (tmp_path / "wrap.log").read_text()
    assert (rules / "hosts.deny").read_text() == f"# the site's own line\nimapd: {deny}\n"


@pytest.mark.peer
def test_a_restart_keeps_an_unexpired_ban(tmp_path: Path) -> None:
    deny = tmp_path / "guard.deny"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hosts.allow").write_text("")
    (rules / "hosts.deny").write_text(f"imapd: {deny}\n")
    with dovecot(tmp_path) as imap:
        assert imap.log is not None
        wait_until(imap.log.exists, what="dovecot's log")
        conf = config(tmp_path, JAIL.format(log=imap.log, bantime="1h"))
        with wrap(imap.port, rules, tmp_path / "wrap.log") as front:
            with guard(conf):
                for _ in range(3):
                    fail_login(imap.port, "127.0.0.7")
                wait_until(lambda: "127.0.0.7" in banned(deny), what="the ban")
            deny.unlink()  # whatever happens to the file while guard is down
            assert greeting(front, "127.0.0.7").startswith(b"* OK")
            with guard(conf):
                assert "127.0.0.7" in banned(deny)
                assert greeting(front, "127.0.0.7") == b""
                status = run(conf, "status", "imap")
                assert "127.0.0.7  3 failure(s)" in status.stdout
